"""Rule accentuate_layer: feature accentuation of the top images of every rendered unit of one
layer, on one dataset, in one batch (featvis.render.accentuate)."""

import logging
import time

import numpy as np

from featvis.core.runtime import start_job
from featvis.render.accent_export import accent_items, save_accentuations
from featvis.render.accentuate import AccentSettings, accentuate, top_targets
from featvis.render.jobs import layer_channels
from featvis.vision.data import display_image, read_manifest
from featvis.vision.models import load_model
from featvis.vision.receptive import load_fields, load_view

sm = snakemake  # noqa: F821 - injected by Snakemake
options, layer = sm.params.options, sm.wildcards.layer
device = start_job(sm.log, sm.params.compute)
model = load_model(sm.params.spec, sm.wildcards.model)
pre = model.preprocess
(_, channels_in, *image_size), fields = load_fields(sm.input.fields)
interpolation, crop_pct = load_view(sm.input.fields)
manifest = read_manifest(sm.input.manifest)
paths, labels = manifest["path"].tolist(), manifest["label"].tolist()

channels = layer_channels(model.module, layer, sm.params.channels, pre.channels, pre.size)
targets, rows = top_targets(dict(np.load(sm.input.topk)), channels, options["patches"])


def seed_image(row: int) -> np.ndarray:
    """The whole image as the model saw it, RGB in [0, 1] (a grey model's image repeated)."""
    image = display_image(paths[row], tuple(image_size), channels_in, interpolation, crop_pct)
    image = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3]
    return image.astype(np.float32) / 255.0


settings = AccentSettings(steps=options["steps"], lr=options["lr"], pull=options["pull"], param=options["param"],
                          colour=options["colour"], transforms=options["transforms"], mean=pre.mean, std=pre.std)
start = time.perf_counter()
result = accentuate(model.module, layer, targets, np.stack([seed_image(r) for r in rows]), settings,
                    seed=sm.params.compute["seed"], device=str(device), progress=True)
logging.getLogger("featvis.render.accentuate").info(
    "%d accentuations (%d units) in %.2f s", len(targets), len(channels), time.perf_counter() - start)
extra = {"model": sm.wildcards.model, "layer": layer, "dataset": sm.wildcards.dataset, "settings": repr(settings)}
save_accentuations(result, targets, accent_items(result, targets, rows, paths, labels), fields[layer],
                   sm.output.units, sm.output.table, sm.output.arrays, extra)
