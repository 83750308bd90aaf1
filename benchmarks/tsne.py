"""t-SNE on 20,000 x 256 features: featvis (PCA-50 + openTSNE FFT) vs scikit-learn's TSNE.

Features: a seeded mixture of 20 anisotropic Gaussian clusters in 256 dimensions with a
low-rank structure (like pooled CNN features). Both run in this process, same threads.
Writes benchmarks/results/tsne.md. Run: `PYTHONPATH=src python benchmarks/tsne.py [n]`.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from featvis.vision.embed import embed, standardize, trustworthiness

THREADS = 2


def features(n: int, dims: int = 256, clusters: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, clusters, n)
    basis = rng.normal(size=(32, dims))
    centres = rng.normal(scale=3.0, size=(clusters, 32))
    latent = centres[labels] + rng.normal(size=(n, 32)) * rng.uniform(0.5, 1.5, size=(clusters, 1))[labels]
    return (latent @ basis + 0.5 * rng.normal(size=(n, dims))).astype(np.float32), labels


def sklearn_tsne(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=30.0, random_state=seed, n_jobs=THREADS).fit_transform(standardize(x))


def main(n: int = 20_000) -> None:
    torch.set_num_threads(THREADS)
    x, _ = features(n)
    rows = []
    for name, run in (("featvis (PCA-50 + openTSNE, FFT)", lambda: embed(x, "tsne", seed=0, threads=THREADS)),
                      ("scikit-learn TSNE (Barnes-Hut)", lambda: sklearn_tsne(x, 0))):
        start = time.perf_counter()
        coords = run()
        seconds = time.perf_counter() - start
        trust = trustworthiness(x, coords, n_neighbors=10, max_points=5000)
        rows.append((name, seconds, trust))
        print(f"{name}: {seconds:.1f} s, trustworthiness {trust:.4f}", flush=True)
    speedup = rows[1][1] / rows[0][1]
    import openTSNE
    import sklearn

    lines = [
        "# t-SNE: featvis vs scikit-learn",
        "",
        f"{n:,} x 256 features (seeded 20-cluster low-rank mixture), {THREADS} threads, "
        f"{platform.processor() or platform.machine()}, openTSNE {openTSNE.__version__}, "
        f"scikit-learn {sklearn.__version__}. Trustworthiness (k=10) on the same seeded 5,000-point subsample.",
        f"Load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])} (shared machine: both runs "
        "saw the same contention, so compare the ratio).",
        "",
        "| implementation | seconds | trustworthiness |",
        "|---|---:|---:|",
        *[f"| {name} | {seconds:.1f} | {trust:.4f} |" for name, seconds, trust in rows],
        "",
        f"Speed-up: **{speedup:.2f}x** (target: at least 3x with comparable trustworthiness).",
        "",
    ]
    out = Path(__file__).parent / "results" / "tsne.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
