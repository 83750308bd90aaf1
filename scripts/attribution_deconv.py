"""Rule attribution_deconv: each channel's top patches next to their DeconvNet projections."""
import numpy as np

from featvis.core.figures import image_grid, save_figure
from featvis.core.runtime import start_job
from featvis.core.units import write_unit_image
from featvis.vision.attribution import project, projection_to_image
from featvis.vision.data import model_image, read_manifest, to_tensor
from featvis.vision.models import load_model
from featvis.vision.patches import cut_patch, describe_field, patch_box, unit_strip
from featvis.vision.receptive import load_fields

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
model = load_model(sm.params.spec, sm.params.model)
module, p, layer = model.module.to(device), model.preprocess, sm.params.layer
_, fields = load_fields(sm.input.fields)  # traced once per model by rule layer_table
field = fields[layer]
topk = dict(np.load(sm.input.topk))
paths = read_manifest(sm.input.manifest)["path"].tolist()
k = topk["value"].shape[1]
cells, titles = [], []
for c in range(min(sm.params.channels, topk["value"].shape[0])):
    ids, ys, xs = topk["image"][c], topk["y"][c], topk["x"][c]
    images = [model_image(paths[i], p) for i in ids]
    projections = project(module, layer, to_tensor(images, p).to(device), c, ys, xs, sm.params.method)
    patches = [cut_patch(im, field, y, x) for im, y, x in zip(images, ys, xs)]
    shown = [cut_patch(projection_to_image(pr, patch_box(field, y, x, p.size)), field, y, x)
             for pr, y, x in zip(projections, ys, xs)]
    write_unit_image(sm.output.units, c, sm.params.method, unit_strip(shown), {
        "title": f"{sm.params.method} projections of the top-{k} patches (grey = 0)",
        "field": describe_field(field), "values": [round(float(v), 6) for v in topk["value"][c]]}, "jpg")
    blank = np.full_like(patches[0], 255)
    cells += patches + [blank] + shown
    titles += [f"ch {c} patch 1"] + [""] * (k - 1) + [""] + [f"ch {c} {sm.params.method}"] + [""] * (k - 1)
title = (f"{sm.params.model} {layer}: top-{k} patches (left) and their {sm.params.method} projections "
         f"(right, grey = 0)\n{describe_field(field)}")
save_figure(image_grid(cells, ncols=2 * k + 1, titles=titles, cell_inches=0.6, suptitle=title,
                       value_range=(0, 255)), sm.output.figure, dpi=sm.params.dpi)
