"""Rule embed_figures: coordinates table, trustworthiness, scatter and atlas per method."""
import logging

import numpy as np

from featvis.core.figures import save_figure
from featvis.core.io import atomic_path, read_json, write_json
from featvis.core.runtime import start_job
from featvis.vision.data import display_image, read_manifest
from featvis.vision.embed import atlas, scatter
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
manifest = read_manifest(sm.input.manifest)
labels = manifest["label"].tolist()
if len(set(labels)) < 2:
    logging.getLogger("featvis.vision.embed").warning(
        "the label column has one class (%r): scatter colours carry no information", labels[0])
preprocess = load_model(sm.params.spec, sm.params.model).preprocess
table = manifest[["path", "label", "split"]].copy()
trust = {}
for method, coords_path, meta_path, scatter_path, atlas_path in zip(
    sm.params.methods, sm.input.coords, sm.input.meta, sm.output.scatter, sm.output.atlas
):
    coords = np.load(coords_path)
    table[f"{method}_1"], table[f"{method}_2"] = coords[:, 0], coords[:, 1]
    trust[method] = read_json(meta_path)["trustworthiness"]
    title = f"{sm.params.model} {sm.params.layer}: {method.upper()} (trustworthiness {trust[method]:.3f})"
    save_figure(scatter(coords, labels, title), scatter_path, dpi=sm.params.dpi)
    figure = atlas(coords, lambda i: display_image(manifest["path"][i], preprocess.image_size, preprocess.channels),
                   sm.params.grid, sm.params.cell_px, f"{title}: image atlas")
    save_figure(figure, atlas_path, dpi=sm.params.dpi)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, index=False, lineterminator="\n", float_format="%.6g")
write_json(sm.output.trust, trust)
