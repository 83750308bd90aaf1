"""Rule concepts_pages: each (layer, method)'s shard codes merged exactly (top-K per concept, code
statistics); the quality record per layer; per live concept its top patches at the exact receptive
field, a heatmap over its top images, a render of its direction and its caption (units, classes)."""
import logging
from pathlib import Path

import numpy as np

from featvis.concepts.methods import from_state
from featvis.concepts.outputs import heatmaps, live_concepts, quality_record, write_concepts
from featvis.concepts.quality import CodeStats, merge_stats
from featvis.core.io import read_json, write_json
from featvis.core.runtime import each_layer, start_job
from featvis.render import objectives as obj
from featvis.render.optimize import RenderSettings, render
from featvis.vision.data import read_manifest
from featvis.vision.mining import merge_topk
from featvis.vision.models import load_model
from featvis.vision.receptive import load_fields, load_view

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
log = logging.getLogger("featvis.concepts")
section = sm.params.settings
manifest = read_manifest(sm.input.manifest)
paths = manifest["path"].tolist()
labels = manifest["label"].fillna("").astype(str).tolist()
class_names = sorted({label for label in labels if label})
(_, channels, *image_size), fields = load_fields(sm.input.fields)
view = load_view(sm.input.fields)
model = load_model(sm.params.spec, sm.params.model)


def merged(layer: str, method: str):
    files = [Path(shard) / f"{layer}.{method}.npz" for shard in sm.input.shards]
    parts = [dict(np.load(f)) for f in files if f.exists()]  # shards past the last image are empty
    tops = [{k.removeprefix("top_"): v for k, v in p.items() if k.startswith("top_")} for p in parts]
    stats = merge_stats([CodeStats.from_arrays({k.removeprefix("stats_"): v for k, v in p.items()
                                                if k.startswith("stats_")}) for p in parts])
    return merge_topk(tops, section["top_k"], layer=f"{layer} concepts"), stats


def concept_renders(layer: str, dictionary, concepts: list[int]) -> dict[int, np.ndarray]:
    if not section["render_steps"] or not concepts:
        return {}
    settings = RenderSettings(size=section["render_size"], steps=section["render_steps"],
                              mean=model.preprocess.mean, std=model.preprocess.std)
    vectors = dictionary.atoms[concepts]
    result = render(model.module, obj.direction(layer, vectors), [section["seed"] + c for c in concepts],
                    settings, device=device)
    return dict(zip(concepts, result.images))


quality_paths = iter(sm.output.quality)
concept_dir = Path(sm.output.quality[0]).parents[1]  # <results>/concepts/<model>/<dataset>
units = iter(sm.output.units)
for layer in each_layer([e["layer"] for e in sm.params.entries], sm.params.compute):
    record_all = {"model": sm.params.model, "dataset": sm.params.dataset, "layer": layer, "methods": {}}
    for method in section["methods"]:
        base = concept_dir / layer / method
        dictionary = from_state(dict(np.load(base / "dictionary.npz")))
        topk, stats = merged(layer, method)
        record = quality_record(method, read_json(base / "fit.json"), stats)
        if record["all_zero"]:
            log.warning("%s %s: the layer's activations are all zero on %s: no concept fires", sm.params.model,
                        layer, sm.params.dataset)
        record_all["methods"][method] = record
        concepts = live_concepts(record)
        log.info("%s %s: R2 %.3f, L0 %.2f, %d of %d concepts dead, stability %.3f", layer, method, record["r2"],
                 record["l0"], len(record["dead"]), record["n_concepts"], record["stability"])
        folder = next(units)
        Path(folder).mkdir(parents=True, exist_ok=True)
        heat = heatmaps(model, layer, dictionary, topk, concepts, paths, section["heatmap_images"])
        written = write_concepts(folder, record, dictionary, topk, fields[layer], paths, labels, class_names,
                                 stats.class_presence(), image_size, channels, view, heat,
                                 concept_renders(layer, dictionary, concepts), section["units_shown"])
        log.info("%s %s: %d concept pages", layer, method, written)
    write_json(next(quality_paths), record_all)
