"""Rule embed_method: one 2-D map of a layer's pooled features, with its trustworthiness."""
import time

import numpy as np

from featvis.core.io import save_npy, write_sidecar
from featvis.core.runtime import start_job
from featvis.vision.embed import fit_embedding, trust_neighbors, trustworthiness

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log, sm.params.compute)
compute = sm.params.compute
features = np.asarray(np.load(sm.input.features, mmap_mode="r"), dtype=np.float64)
start = time.perf_counter()
coords, used = fit_embedding(features, sm.params.method, seed=int(compute["seed"]), threads=int(compute["threads"]),
                             **sm.params.options)
seconds = time.perf_counter() - start
k = trust_neighbors(len(features), sm.params.trust_neighbors)  # capped for small sets
trust = trustworthiness(features, coords, n_neighbors=k, seed=int(compute["seed"]))
save_npy(sm.output.coords, coords)
# options: as configured; effective: what the map was made with (capped for small N, or the fallback layout)
write_sidecar(sm.output.meta, method=sm.params.method, options=sm.params.options, effective=used, n=len(features),
              dims=int(features.shape[1]), trustworthiness=trust, trust_neighbors=k)
print(f"{sm.params.method}: {seconds:.1f} s, trustworthiness {'undefined' if trust is None else f'{trust:.4f}'}")
