"""Rule embed_method: one 2-D map of a layer's pooled features, with its trustworthiness."""
import time

import numpy as np

from featvis.core.io import save_npy, write_sidecar
from featvis.core.runtime import start_job
from featvis.vision.embed import embed, trustworthiness

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log, sm.params.compute)
compute = sm.params.compute
features = np.asarray(np.load(sm.input.features, mmap_mode="r"), dtype=np.float64)
start = time.perf_counter()
coords = embed(features, sm.params.method, seed=int(compute["seed"]), threads=int(compute["threads"]),
               **sm.params.options)
seconds = time.perf_counter() - start
trust = trustworthiness(features, coords, n_neighbors=sm.params.trust_neighbors, seed=int(compute["seed"]))
save_npy(sm.output.coords, coords)
write_sidecar(sm.output.meta, method=sm.params.method, options=sm.params.options, n=len(features),
              dims=int(features.shape[1]), trustworthiness=trust, trust_neighbors=sm.params.trust_neighbors)
print(f"{sm.params.method}: {seconds:.1f} s, trustworthiness {trust:.4f}")
