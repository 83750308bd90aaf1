"""Rule patches_figures: the layer's channels x K patch grid and per-channel figures."""
import logging
from pathlib import Path

import numpy as np

from featvis.core.figures import save_figure
from featvis.core.runtime import start_job
from featvis.vision.data import read_manifest
from featvis.vision.patches import channel_grid, describe_field, layer_grid, topk_patches
from featvis.vision.receptive import load_fields

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
log = logging.getLogger("featvis.vision.patches")
layer = sm.params.layer
# the model's cached fields (rule layer_table), traced at its input shape: no model to load here
(_, channels, *image_size), fields = load_fields(sm.input.fields)
field = fields[layer]
log.info("%s: %s", layer, describe_field(field))
topk = dict(np.load(sm.input.topk))
manifest = read_manifest(sm.input.manifest)
paths, labels = manifest["path"].tolist(), manifest["label"].tolist()
n_channels = topk["value"].shape[0]
word = "minimally" if bool(topk["negative"]) else "maximally"
shown = list(range(min(sm.params.grid_channels, n_channels)))
patches = topk_patches(topk, field, paths, tuple(image_size), channels, shown)
title = (f"{sm.params.model} {layer}: top-{topk['value'].shape[1]} {word} activating images, "
         f"channels {shown[0]}-{shown[-1]} of {n_channels}\n{describe_field(field)}")
save_figure(layer_grid(patches, shown, title), sm.output.grid, dpi=sm.params.dpi)
out = Path(sm.output.channels)
out.mkdir(parents=True, exist_ok=True)
for c, row in zip(shown[: sm.params.channel_figures], patches):
    values = topk["value"][c]
    names = [labels[i] for i in topk["image"][c]]
    figure = channel_grid(row, values, names, f"{sm.params.model} {layer} channel {c} ({word} activating)\n"
                                              f"{describe_field(field)}")
    save_figure(figure, out / f"channel_{c:04d}.png", dpi=sm.params.dpi)
