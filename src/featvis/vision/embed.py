"""2-D maps of a layer's pooled features: PCA, t-SNE, UMAP, with trustworthiness.

Methods live in a registry (``METHODS``) so users can add their own. t-SNE uses
openTSNE (FFT-accelerated gradients, Annoy neighbours) after a PCA to 50 dimensions:
measured in ``benchmarks/tsne.py`` against scikit-learn's TSNE on 20,000 x 256 features.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from featvis.core.registry import registrar

log = logging.getLogger(__name__)


class EmbedError(ValueError):
    """An embedding that cannot be made from the given features."""


Method = Callable[..., np.ndarray]
METHODS: dict[str, Method] = {}


register_method = registrar(METHODS, "Add ``fn(features, seed, threads, **options) -> (N, 2) array``.")


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


def scatter(coords: np.ndarray, labels: list[str], title: str, size_inches: float = 6.0):
    """Points coloured by label, with a legend; one class is drawn in one colour and says so."""
    import matplotlib.pyplot as plt

    classes = sorted(set(labels))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(size_inches + 2.2, size_inches))
    labels_arr = np.asarray(labels)
    for i, name in enumerate(classes):
        mask = labels_arr == name
        ax.scatter(coords[mask, 0], coords[mask, 1], s=6, color=cmap(i % cmap.N), label=f"{name} ({mask.sum()})",
                   linewidths=0, alpha=0.8)
    legend_title = "label" if len(classes) > 1 else "label (one class:\ncolour carries no information)"
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title=legend_title, title_fontsize=7,
              markerscale=2, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(left=0.03, right=0.72, bottom=0.03, top=0.92)
    return fig


def atlas_cells(coords: np.ndarray, grid: int) -> dict[tuple[int, int], int]:
    """Snap points to a grid x grid lattice over their bounding box; each occupied cell
    shows the point nearest its centre (lowest index on ties)."""
    low, high = coords.min(axis=0), coords.max(axis=0)
    unit = (coords - low) / np.where(high > low, high - low, 1.0) * grid
    cell = np.minimum(unit.astype(int), grid - 1)
    offset = np.linalg.norm(unit - cell - 0.5, axis=1)
    chosen: dict[tuple[int, int], int] = {}
    for i in np.lexsort((np.arange(len(coords)), offset)):  # nearest to centre first
        chosen.setdefault((int(cell[i, 0]), int(cell[i, 1])), int(i))
    return chosen


def atlas(coords: np.ndarray, thumbnail: Callable[[int], np.ndarray], grid: int, cell_px: int, title: str):
    """An image atlas: thumbnails placed on the grid cell of their 2-D coordinates
    (y up, as in the scatter)."""
    import matplotlib.pyplot as plt
    from PIL import Image

    canvas = np.full((grid * cell_px, grid * cell_px, 3), 255, np.uint8)
    for (cx, cy), index in atlas_cells(coords, grid).items():
        image = np.asarray(Image.fromarray(thumbnail(index)).convert("RGB").resize((cell_px, cell_px),
                                                                                    Image.Resampling.BILINEAR))
        row = grid - 1 - cy
        canvas[row * cell_px : (row + 1) * cell_px, cx * cell_px : (cx + 1) * cell_px] = image
    side = min(12.0, grid * cell_px / 100)
    fig, ax = plt.subplots(figsize=(side, side + 0.4))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / (side + 0.4))
    return fig
