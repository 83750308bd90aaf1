"""Rule attribution_cam: CAM (when the model allows it) and Grad-CAM maps over chosen images."""
import logging

import numpy as np

from featvis.core.figures import image_grid, save_figure
from featvis.core.io import save_npz, write_json
from featvis.core.runtime import start_job
from featvis.vision.attribution import AttributionError, class_activation_map, grad_cam, overlay
from featvis.vision.data import model_image, read_manifest, to_tensor
from featvis.vision.models import load_model
from featvis.vision.neighbors import resolve_queries

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
log = logging.getLogger("featvis.vision.attribution")
model = load_model(sm.params.spec, sm.params.model)
module, p = model.module.to(device), model.preprocess
manifest = read_manifest(sm.input.manifest)
rows = resolve_queries(manifest, sm.params.images, sm.params.n_images)
images = [model_image(manifest["path"][i], p) for i in rows]
batch = to_tensor(images, p).to(device)
classes = list(sm.params.classes) or None
columns, maps = [], {}
if sm.params.cam in ("auto", True, "true"):
    try:
        maps["CAM"], chosen, prob = class_activation_map(module, batch, classes)
    except AttributionError as error:
        if sm.params.cam != "auto":
            raise
        log.info("no CAM column: %s", error)
for layer in sm.params.layers:  # chosen at start: explicit, or the last spatial analysis layer
    maps[f"Grad-CAM {layer}"], chosen, prob = grad_cam(module, layer, batch, classes)
if not maps:
    raise AttributionError("no class map to draw: set attribution.cam_layers to convolutional layers")
names = p.class_names or tuple(str(i) for i in range(int(chosen.max()) + 1))
cells, titles = [], []
for n, (row, image) in enumerate(zip(rows, images)):
    cells.append(image)
    titles.append(f"#{row} {manifest['label'][row][:10]}")
    for column, values in maps.items():
        cells.append(overlay(image, values[n]))
        titles.append(f"{column[:24]}\n{names[chosen[n]][:14]} p={prob[n]:.2f}" if n == 0 else
                      f"{names[chosen[n]][:14]} p={prob[n]:.2f}")
title = f"{sm.params.model}: class activation maps for the {'given' if classes else 'predicted'} class"
save_figure(image_grid(cells, ncols=len(maps) + 1, titles=titles, cell_inches=1.3, suptitle=title),
            sm.output.figure, dpi=sm.params.dpi)
save_npz(sm.output.arrays, images=np.array(rows), classes=chosen, probabilities=prob,
         **{k.replace(" ", "_"): v for k, v in maps.items()})
write_json(sm.output.meta, {"images": rows, "classes": chosen.tolist(), "class_names": [names[c] for c in chosen],
                            "probabilities": prob.tolist(), "maps": list(maps), "cam": "CAM" in maps})
