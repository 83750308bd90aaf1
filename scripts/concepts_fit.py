"""Rule concepts_fit: one streamed pass over a dataset samples positions of every concept layer of a
model (featvis.concepts.sampling), then each method fits a dictionary per layer, twice (seed, seed + 1)
for the stability number. Fit times go to the log, not the files (which are byte-identical on rerun)."""
import logging
import time

import numpy as np
import torch

from featvis.concepts.checks import check_nonnegative
from featvis.concepts.methods import fit
from featvis.concepts.quality import matched_cosine
from featvis.concepts.sampling import PositionSample
from featvis.concepts.stream import layer_batches
from featvis.core.io import save_npz, write_sidecar
from featvis.core.runtime import start_job
from featvis.vision.data import read_manifest
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
log = logging.getLogger("featvis.concepts")
section, entries = sm.params.settings, sm.params.entries
if "nmf" in section["methods"]:  # at job start, before any pass: the features stage's minima say it
    for entry, minima in zip(entries, sm.input.minima):
        check_nonnegative(minima, section, f"concepts ({entry['model']} {entry['layer']})")
paths = read_manifest(sm.input.manifest)["path"].tolist()
model = load_model(sm.params.spec, sm.params.model)
layers = [e["layer"] for e in entries]
samples = {layer: PositionSample(section["max_positions"], section["positions_per_image"], section["seed"])
           for layer in layers}
began = time.perf_counter()
for start, acts in layer_batches(model, paths, layers, device, section["encode_batch_size"], sm.params.workers):
    for layer in layers:
        samples[layer].add(acts[layer], start)
log.info("sampling pass: %d images in %.1f s", len(paths), time.perf_counter() - began)

outputs = iter(zip(sm.output.dictionary, sm.output.fit))
for entry in entries:
    sample = samples[entry["layer"]]
    x = sample.ordered_rows()
    if float(x.abs().max()) == 0.0:
        log.warning("%s %s: every sampled activation is zero; the layer is dead on this dataset",
                    entry["model"], entry["layer"])
    for method in section["methods"]:
        dictionary_path, fit_path = next(outputs)
        settings = {key: section[key] for key in ("k", "steps", "batch_size", "lr", "relu", "shift")}
        torch.manual_seed(section["seed"])
        began = time.perf_counter()
        try:
            dictionary = fit(method, x, entry["n_concepts"], settings, section["seed"])
        except ValueError as error:
            raise SystemExit(f"concepts {entry['model']} {entry['layer']} {method}: {error}") from None
        seconds = time.perf_counter() - began
        second = fit(method, x, entry["n_concepts"], settings, section["seed"] + 1)
        stability, per_concept, partner = matched_cosine(dictionary.atoms, second.atoms)
        log.info("%s %s: fit %.1f s, stability %.3f", entry["layer"], method, seconds, stability)
        save_npz(dictionary_path, **dictionary.state())
        write_sidecar(fit_path, model=entry["model"], dataset=entry["dataset"], layer=entry["layer"], method=method,
                      n_concepts=entry["n_concepts"], settings=settings, seed=section["seed"],
                      sample=sample.describe(), stability=stability,
                      stability_per_concept=np.round(per_concept, 6).tolist(), stability_partner=partner.tolist(),
                      history=dictionary.history)
