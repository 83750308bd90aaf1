"""2-D maps of a layer's pooled features: PCA, t-SNE, UMAP, with trustworthiness.

Methods live in a registry (``METHODS``) so users can add their own. t-SNE uses
openTSNE (FFT-accelerated gradients, Annoy neighbours) after a PCA to 50 dimensions:
measured in ``benchmarks/tsne.py`` against scikit-learn's TSNE on 20,000 x 256 features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

log = logging.getLogger(__name__)


class EmbedError(ValueError):
    """An embedding that cannot be made from the given features."""


Method = Callable[..., np.ndarray]
METHODS: dict[str, Method] = {}


def register_method(name: str) -> Callable[[Method], Method]:
    """Add ``fn(features, seed, threads, **options) -> (N, 2) array``."""

    def decorator(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return decorator


def standardize(features: np.ndarray) -> np.ndarray:
    """Centre and scale each channel (constant channels stay zero)."""
    features = np.asarray(features, dtype=np.float64)
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


@register_method("pca")
def pca(features: np.ndarray, seed: int = 0, threads: int = 1, **_options) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=2, svd_solver="full").fit_transform(features)


def pca_reduce(features: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """The first ``dims`` principal components (the features unchanged when already small)."""
    from sklearn.decomposition import PCA

    if features.shape[1] <= dims:
        return np.ascontiguousarray(features, dtype=np.float64)
    return PCA(n_components=dims, svd_solver="randomized", random_state=seed).fit_transform(features)


@register_method("tsne")
def tsne(features: np.ndarray, seed: int = 0, threads: int = 1, perplexity: float = 30.0, pca_dims: int = 50,
         **_options) -> np.ndarray:
    from openTSNE import TSNE

    perplexity = min(perplexity, (len(features) - 1) / 3)
    reduced = pca_reduce(features, pca_dims, seed)
    embedding = TSNE(perplexity=perplexity, n_jobs=threads, random_state=seed, neighbors="annoy",
                     negative_gradient_method="fft", verbose=False).fit(reduced)
    return np.asarray(embedding, dtype=np.float64)


@register_method("umap")
def umap(features: np.ndarray, seed: int = 0, threads: int = 1, n_neighbors: int = 15, min_dist: float = 0.1,
         **_options) -> np.ndarray:
    import umap as umap_learn

    n_neighbors = min(n_neighbors, len(features) - 1)
    # random_state makes UMAP single-threaded, which is what keeps it reproducible.
    reducer = umap_learn.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed, n_jobs=1)
    return reducer.fit_transform(features).astype(np.float64)


def embed(features: np.ndarray, method: str, seed: int = 0, threads: int = 1, **options) -> np.ndarray:
    """An (N, 2) map of (N, D) features by a registered method, on standardized features."""
    if method not in METHODS:
        raise EmbedError(f"unknown embedding method {method!r}; known: {', '.join(sorted(METHODS))}")
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 4:
        raise EmbedError(f"need at least 4 feature vectors in an (N, D) array, got shape {features.shape}")
    return METHODS[method](standardize(features), seed=seed, threads=threads, **options)


def trustworthiness(features: np.ndarray, coords: np.ndarray, n_neighbors: int = 10, max_points: int = 5000,
                    seed: int = 0) -> float:
    """scikit-learn's trustworthiness on standardized features (1 = every map neighbour
    is a true neighbour); on a seeded subsample of ``max_points`` when larger (O(N^2))."""
    from sklearn.manifold import trustworthiness as sk_trust

    features = standardize(features)
    if len(features) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(features), max_points, replace=False))
        features, coords = features[keep], coords[keep]
    n_neighbors = min(n_neighbors, len(features) // 2 - 1)
    return float(sk_trust(features, coords, n_neighbors=n_neighbors))
