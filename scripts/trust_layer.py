"""Rule trust_layer: the path check and seed stability of every unit of one render job (featvis.trust.stage)."""
import logging
import time

import numpy as np

from featvis.core.io import read_json, write_json
from featvis.core.runtime import start_job
from featvis.core.units import unit_stem
from featvis.render.jobs import dataset_images, fit_to_model, settings_from_job, with_dataset_statistics
from featvis.trust.stage import Natural, TrustOptions, check_job, seed_renders, unit_records
from featvis.vision.data import model_image, read_manifest, to_tensor
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
job, name, layer = sm.params.job, sm.wildcards.render_job, sm.wildcards.layer
device = start_job(sm.log, {**sm.params.compute, "seed": job["seed"]})
log = logging.getLogger("featvis.trust")
loaded = load_model(sm.params.spec, job["model"])
images = dataset_images(sm.input.job_manifest[0], job["size"]) if sm.input.job_manifest else None
job = fit_to_model(with_dataset_statistics(job, images), loaded)  # the render job's own settings
settings = settings_from_job(job, loaded.preprocess.mean, loaded.preprocess.std)
options = TrustOptions(**sm.params.options)

saved = np.load(f"{sm.input.renders}/params.npz")
record_items = read_json(f"{sm.input.renders}/trace.json")["items"]  # name and channel of each render
renders, names = saved["images"], [item["name"] for item in record_items]
channels = [int(item["channel"]) for item in record_items]
natural = load = None
if sm.input.maxima:
    paths = list(read_manifest(sm.input.manifest[0])["path"])
    natural = Natural(sm.params.dataset, np.load(sm.input.maxima[0], mmap_mode="r"), paths)

    def load(indices):
        return to_tensor([model_image(paths[i], loaded.preprocess) for i in indices], loaded.preprocess)

# Copy 0 of a job rendered with the channel objective alone is seed 0 of the stability set.
plain = int(job["copies"]) == 1 or not float(job["diversity"])
reuse = {c: renders[i] for i, (c, n) in enumerate(zip(channels, names, strict=True)) if plain and n.endswith("_copy0")}
started = time.perf_counter()
seeds = seed_renders(loaded.module, layer, sorted(set(channels)), settings, job["seed"], options.seeds, device, reuse)
rendered = time.perf_counter()
record = check_job(loaded.module, layer, channels, renders, names, settings, options, natural, load, seeds,
                   sm.params.analysed, device, model_name=job["model"])
checked = time.perf_counter()
log.info("seed renders %.2f s, path check and stability %.2f s", rendered - started, checked - rendered)
write_json(sm.output.record, {"model": job["model"], "job": name, **record})
for channel, unit in unit_records(record, job["model"], name).items():
    write_json(f"{sm.output.units}/{unit_stem(channel)}.trust.json", unit)
