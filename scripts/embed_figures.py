"""Rule embed_figures: per layer, the coordinates table, trustworthiness, and a scatter and an
atlas per method; all layers of one (model, dataset) in one job."""
import logging

import numpy as np

from featvis.core.figures import save_figure
from featvis.core.io import atomic_path, read_json, write_json
from featvis.core.runtime import each_layer, start_job
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
grid, cell_px = atlas_layout(len(manifest), sm.params.grid, sm.params.cell_px)
log.info("atlas: %d x %d cells of %d px for %d images (atlas_grid: %s)", grid, grid, cell_px, len(manifest),
         sm.params.grid)
methods = sm.params.methods


def image(i: int) -> np.ndarray:
    return model_image(manifest["path"][i], preprocess)


def layer_figures(layer: str, files: dict, table_path: str, trust_path: str) -> None:
    """files: {method: (coords, meta, scatter, atlas)} of one layer."""
    table = manifest[["path", "label", "split"]].copy()
    trust = {}
    for method, (coords_path, meta_path, scatter_path, atlas_path) in files.items():
        coords = np.load(coords_path)
        table[f"{method}_1"], table[f"{method}_2"] = coords[:, 0], coords[:, 1]
        meta = read_json(meta_path)
        trust[method] = meta["trustworthiness"]
        quality = "trustworthiness undefined" if trust[method] is None else f"trustworthiness {trust[method]:.3f}"
        layout = meta.get("effective", {}).get("layout")  # a fallback layout says so in the title
        title = f"{sm.params.model} {layer}: {method.upper()} ({quality})"
        note = f"\n{layout}" if layout else ""
        save_figure(scatter(coords, labels, title + note), scatter_path, dpi=sm.params.dpi)
        save_figure(atlas(coords, image, grid, cell_px, f"{title}: image atlas{note}"), atlas_path, dpi=sm.params.dpi)
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.6g")
    write_json(trust_path, trust)


n = len(methods)  # the inputs and figures are listed layer by layer, a method each
for i, layer in enumerate(each_layer(sm.params.layers)):
    part = slice(i * n, (i + 1) * n)
    files = dict(zip(methods, zip(sm.input.coords[part], sm.input.meta[part], sm.output.scatter[part],
                                  sm.output.atlas[part])))
    layer_figures(layer, files, sm.output.table[i], sm.output.trust[i])
