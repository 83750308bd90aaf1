"""Rule embed_figures: coordinates table, trustworthiness, scatter and atlas per method."""
import logging

import numpy as np

from featvis.core.figures import save_figure
from featvis.core.io import atomic_path, read_json, write_json
from featvis.core.runtime import start_job
from featvis.vision.data import model_image, read_manifest
from featvis.vision.embed import atlas, atlas_layout, scatter
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
log = logging.getLogger("featvis.vision.embed")
manifest = read_manifest(sm.input.manifest)
labels = manifest["label"].tolist()
if len(set(labels)) < 2:
    log.warning("the label column has one class (%r): scatter colours carry no information", labels[0])
preprocess = load_model(sm.params.spec, sm.params.model).preprocess
table = manifest[["path", "label", "split"]].copy()
grid, cell_px = atlas_layout(len(manifest), sm.params.grid, sm.params.cell_px)
log.info("atlas: %d x %d cells of %d px for %d images (atlas_grid: %s)", grid, grid, cell_px, len(manifest),
         sm.params.grid)
trust = {}
for method, coords_path, meta_path, scatter_path, atlas_path in zip(
    sm.params.methods, sm.input.coords, sm.input.meta, sm.output.scatter, sm.output.atlas
):
    coords = np.load(coords_path)
    table[f"{method}_1"], table[f"{method}_2"] = coords[:, 0], coords[:, 1]
    meta = read_json(meta_path)
    trust[method] = meta["trustworthiness"]
    quality = "trustworthiness undefined" if trust[method] is None else f"trustworthiness {trust[method]:.3f}"
    layout = meta.get("effective", {}).get("layout")  # a fallback layout says so in the title
    title = f"{sm.params.model} {sm.params.layer}: {method.upper()} ({quality})"
    note = f"\n{layout}" if layout else ""
    save_figure(scatter(coords, labels, title + note), scatter_path, dpi=sm.params.dpi)
    figure = atlas(coords, lambda i: model_image(manifest["path"][i], preprocess),
                   grid, cell_px, f"{title}: image atlas{note}")
    save_figure(figure, atlas_path, dpi=sm.params.dpi)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.6g")
write_json(sm.output.trust, trust)
