"""Rule patches_figures: per layer and sign, the channels x K patch grid, and every channel's
patches as unit pictures (featvis.core.units) for the gallery; all of one (model, dataset) in one job."""
import logging

import numpy as np

from featvis.core.figures import save_figure
from featvis.core.runtime import each_layer, start_job
from featvis.core.units import write_unit_image
from featvis.vision.data import read_manifest
from featvis.vision.patches import describe_field, layer_grid, topk_patches, unit_strip
from featvis.vision.receptive import load_fields, load_view

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
log = logging.getLogger("featvis.vision.patches")
# the model's cached fields (rule layer_table), traced at its input shape: no model to load here
(_, channels, *image_size), fields = load_fields(sm.input.fields)
interpolation, crop_pct = load_view(sm.input.fields)  # patches are cut from the images as the model saw them
manifest = read_manifest(sm.input.manifest)
paths, labels = manifest["path"].tolist(), manifest["label"].tolist()


def figures(layer: str, topk_path: str, grid_path: str, units_dir: str) -> None:
    """One layer's grid of the first channels, and a unit picture for every channel."""
    field = fields[layer]
    log.info("%s: %s", layer, describe_field(field))
    topk = dict(np.load(topk_path))
    n_channels, k = topk["value"].shape
    word = "minimally" if bool(topk["negative"]) else "maximally"
    shown = list(range(min(sm.params.grid_channels, n_channels)))
    patches = topk_patches(topk, field, paths, tuple(image_size), channels, shown, interpolation, crop_pct)
    title = (f"{sm.params.model} {layer}: top-{k} {word} activating images, "
             f"channels {shown[0]}-{shown[-1]} of {n_channels}\n{describe_field(field)}")
    save_figure(layer_grid(patches, shown, title), grid_path, dpi=sm.params.dpi)
    # Every channel, in chunks, so channels that share images decode them once.
    for start in range(0, n_channels, 64):
        chunk = list(range(start, min(start + 64, n_channels)))
        for c, row in zip(chunk, topk_patches(topk, field, paths, tuple(image_size), channels, chunk, interpolation,
                                                    crop_pct)):
            ids = [int(i) for i in topk["image"][c]]
            caption = {"title": f"{k} {word} activating images", "field": describe_field(field),
                       "values": [round(float(v), 6) for v in topk["value"][c]],
                       "labels": [str(labels[i]) for i in ids], "images": [str(paths[i]) for i in ids]}
            write_unit_image(units_dir, c, "patches", unit_strip(row), caption, "jpg")


for layer, topk_path, grid_path, units_dir in each_layer(
    zip(sm.params.layers, sm.input.topk, sm.output.grid, sm.output.units)
):
    figures(layer, topk_path, grid_path, units_dir)
