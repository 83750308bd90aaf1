"""Rule neighbors: nearest images of the query images, per metric, with grid figures."""
import numpy as np
import pandas as pd

from featvis.core.figures import save_figure
from featvis.core.io import atomic_path, save_npz
from featvis.core.runtime import start_job
from featvis.vision.data import model_image, read_manifest
from featvis.vision.models import load_model
from featvis.vision.neighbors import nearest, neighbor_count, neighbor_grid, resolve_queries

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log, sm.params.compute)
manifest = read_manifest(sm.input.manifest)
features = np.load(sm.input.features, mmap_mode="r")
queries = resolve_queries(manifest, sm.params.queries, sm.params.n_queries)  # n_queries capped at N
k = neighbor_count(sm.params.k, len(features))  # at most N - 1, logged when capped
preprocess = load_model(sm.params.spec, sm.params.model).preprocess
paths, labels = manifest["path"].tolist(), manifest["label"].tolist()
rows, arrays = [], {"queries": np.array(queries)}
threads = int(sm.params.compute["threads"])
for metric, figure_path in zip(sm.params.metrics, sm.output.figures):
    indices, dists = nearest(features, queries, k, metric, sm.params.index, threads)
    arrays[f"{metric}_indices"], arrays[f"{metric}_distances"] = indices, dists
    for q, ids, ds in zip(queries, indices, dists):
        rows += [{"metric": metric, "query": q, "query_path": paths[q], "rank": r + 1, "neighbor": int(i),
                  "neighbor_path": paths[i], "distance": float(d), "same_label": labels[i] == labels[q]}
                 for r, (i, d) in enumerate(zip(ids, ds))]
    shown = sorted({int(i) for i in indices.ravel()} | set(queries))
    images = {i: model_image(paths[i], preprocess) for i in shown}
    title = (f"{sm.params.model} {sm.params.layer}: {k} nearest image{'s' * (k > 1)} by {metric} "
             f"({sm.params.pool}-pooled features, {sm.params.index} search)")
    save_figure(neighbor_grid(images, queries, indices, dists, labels, title), figure_path, dpi=sm.params.dpi)
save_npz(sm.output.arrays, **arrays)
with atomic_path(sm.output.table) as tmp:
    pd.DataFrame(rows).to_csv(tmp, index=False, lineterminator="\n", float_format="%.6g")
