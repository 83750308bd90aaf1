"""Rule attribution_deconv: each channel's top patches next to their DeconvNet projections, per
layer; all layers of one (model, dataset) in one job, with one model load."""
import numpy as np

from featvis.core.figures import image_grid, save_figure
from featvis.core.runtime import each_layer, start_job
from featvis.core.units import write_unit_image
from featvis.vision.attribution import project, projection_to_image
from featvis.vision.data import model_image, read_manifest, to_tensor
from featvis.vision.models import load_model
from featvis.vision.patches import cut_patch, describe_field, patch_box, unit_strip
from featvis.vision.receptive import load_fields

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
model = load_model(sm.params.spec, sm.params.model)
module, p, method = model.module.to(device), model.preprocess, sm.params.method
_, fields = load_fields(sm.input.fields)  # traced once per model by rule layer_table
paths = read_manifest(sm.input.manifest)["path"].tolist()


def projections(layer: str, topk_path: str, figure_path: str, units_dir: str) -> None:
    field = fields[layer]
    topk = dict(np.load(topk_path))
    k = topk["value"].shape[1]
    cells, titles = [], []
    for c in range(min(sm.params.channels, topk["value"].shape[0])):
        ids, ys, xs = topk["image"][c], topk["y"][c], topk["x"][c]
        images = [model_image(paths[i], p) for i in ids]
        projected = project(module, layer, to_tensor(images, p).to(device), c, ys, xs, method)
        patches = [cut_patch(im, field, y, x) for im, y, x in zip(images, ys, xs)]
        shown = [cut_patch(projection_to_image(pr, patch_box(field, y, x, p.size)), field, y, x)
                 for pr, y, x in zip(projected, ys, xs)]
        write_unit_image(units_dir, c, method, unit_strip(shown), {
            "title": f"{method} projections of the top-{k} patches (grey = 0)",
            "field": describe_field(field), "values": [round(float(v), 6) for v in topk["value"][c]]}, "jpg")
        blank = np.full_like(patches[0], 255)
        cells += patches + [blank] + shown
        titles += [f"ch {c} patch 1"] + [""] * (k - 1) + [""] + [f"ch {c} {method}"] + [""] * (k - 1)
    title = (f"{sm.params.model} {layer}: top-{k} patches (left) and their {method} projections "
             f"(right, grey = 0)\n{describe_field(field)}")
    save_figure(image_grid(cells, ncols=2 * k + 1, titles=titles, cell_inches=0.6, suptitle=title,
                           value_range=(0, 255)), figure_path, dpi=sm.params.dpi)


for layer, topk_path, figure_path, units_dir in each_layer(
    zip(sm.params.layers, sm.input.topk, sm.output.figure, sm.output.units), sm.params.compute
):
    projections(layer, topk_path, figure_path, units_dir)
