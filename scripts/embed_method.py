"""Rule embed_method: one method's 2-D map of each layer's pooled features, with its
trustworthiness; all layers of one (model, dataset) in one job."""
import logging
import time

import numpy as np

from featvis.core.io import save_npy, write_sidecar
from featvis.core.runtime import each_layer, start_job
from featvis.vision.embed import fit_embedding, trust_neighbors, trustworthiness

sm = snakemake  # noqa: F821 - injected by Snakemake
compute = sm.params.compute
start_job(sm.log, compute)
method, seed = sm.params.method, int(compute["seed"])
for layer, features_path, coords_path, meta_path in each_layer(
    zip(sm.params.layers, sm.input.features, sm.output.coords, sm.output.meta), compute
):
    features = np.asarray(np.load(features_path, mmap_mode="r"), dtype=np.float64)
    start = time.perf_counter()
    coords, used = fit_embedding(features, method, seed=seed, threads=int(compute["threads"]), **sm.params.options)
    seconds = time.perf_counter() - start
    k = trust_neighbors(len(features), sm.params.trust_neighbors)  # capped for small sets
    trust = trustworthiness(features, coords, n_neighbors=k, seed=seed)
    save_npy(coords_path, coords)
    # options: as configured; effective: what the map was made with (capped for small N, or the fallback layout)
    write_sidecar(meta_path, method=method, options=sm.params.options, effective=used, n=len(features),
                  dims=int(features.shape[1]), trustworthiness=trust, trust_neighbors=k)
    logging.getLogger("featvis.vision.embed").info(
        "%s %s: %.1f s, trustworthiness %s", layer, method, seconds, "undefined" if trust is None else f"{trust:.4f}")
