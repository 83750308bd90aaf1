"""2-D maps of a layer's pooled features: PCA, t-SNE, UMAP, with trustworthiness.

Methods live in a registry (``METHODS``) so users can add their own. t-SNE uses
openTSNE (FFT-accelerated gradients, Annoy neighbours) after a PCA to 50 dimensions:
measured in ``benchmarks/tsne.py`` against scikit-learn's TSNE on 20,000 x 256 features
(below ``TSNE_FFT_FROM`` images, Barnes-Hut gradients: FFT's fixed cost dominates there).
Above ``fit_max`` images, t-SNE fits its map on a seeded sample and places the other
images on it with openTSNE's ``transform`` (about 4x cheaper per image than fitting).
UMAP also runs after a PCA to 50 dimensions: its neighbour search is what grows with D.

Small datasets (from 2 images up): every parameter that must not exceed the number of
images is capped, with a log line; a method that cannot run on so few points falls back
to PCA's layout, and identical features give every image the origin (docs/embed.md).
:func:`fit_embedding` returns the parameters a map was really made with. Features with NaN
or infinite values are refused with an error naming the images (they would poison the
standardization, and so every coordinate).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np

from featvis.core.registry import registrar
from featvis.vision.finite import require_finite

log = logging.getLogger(__name__)


class EmbedError(ValueError):
    """An embedding that cannot be made from the given features."""


Method = Callable[..., np.ndarray]
METHODS: dict[str, Method] = {}


register_method = registrar(METHODS, "Add ``fn(features, seed, threads, **options) -> (N, 2) array``.")

# Fewer images than this and the method's map says nothing (t-SNE: with two points the
# affinities are 1 whatever the distance; UMAP: its neighbour graph needs 2 neighbours).
MIN_IMAGES = {"tsne": 3, "umap": 3}
TSNE_FFT_FROM = 1000  # t-SNE uses FFT-accelerated gradients from this many images, Barnes-Hut below
FIT_MAX = 20_000  # t-SNE fits on at most this many images (a seeded sample) and places the rest


def capped(name: str, value: float, limit: float, n: int) -> float:
    """``min(value, limit)``, logging when a parameter is capped by the number of images."""
    if value <= limit:
        return value
    log.info("%s %s capped to %s for %d images", name, f"{value:.4g}", f"{limit:.4g}", n)
    return limit


def standardize(features: np.ndarray) -> np.ndarray:
    """Centre and scale each channel (constant channels stay zero)."""
    features = np.asarray(features, dtype=np.float64)
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


@register_method("pca")
def pca(features: np.ndarray, seed: int = 0, threads: int = 1, **_options) -> np.ndarray:
    from sklearn.decomposition import PCA

    n_components = min(2, len(features) - 1, features.shape[1])
    model = PCA(n_components=n_components, svd_solver="full")
    coords = model.fit_transform(features)
    # An axis without variance (the second of two images) is exactly 0, not rounding noise
    # that the scatter would blow up to fill the plot.
    coords[:, model.explained_variance_ <= 1e-12 * model.explained_variance_[0]] = 0.0
    return np.pad(coords, ((0, 0), (0, 2 - n_components)))


def pca_reduce(features: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """The first ``dims`` principal components (the features unchanged when already small)."""
    from sklearn.decomposition import PCA

    if features.shape[1] <= dims:
        return np.ascontiguousarray(features, dtype=np.float64)
    return PCA(n_components=dims, svd_solver="randomized", random_state=seed).fit_transform(features)


def fit_sample(n: int, fit_max: int | None, seed: int) -> np.ndarray | None:
    """The rows (sorted) a map is fitted on when ``n`` exceeds ``fit_max``; None to fit on all."""
    if not fit_max or n <= fit_max:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, int(fit_max), replace=False))


@register_method("tsne")
def tsne(features: np.ndarray, seed: int = 0, threads: int = 1, perplexity: float = 30.0, pca_dims: int = 50,
         initialization: str = "pca", negative_gradient_method: str = "fft", fit_max: int | None = None,
         **_options) -> np.ndarray:
    from openTSNE import TSNE

    reduced = pca_reduce(features, pca_dims, seed)
    sample = fit_sample(len(reduced), fit_max, seed)
    embedding = TSNE(perplexity=perplexity, n_jobs=threads, random_state=seed, neighbors="annoy",
                     negative_gradient_method=negative_gradient_method, initialization=initialization,
                     verbose=False).fit(reduced if sample is None else reduced[sample])
    if sample is None:
        return np.asarray(embedding, dtype=np.float64)
    coords = np.empty((len(reduced), 2))
    rest = np.setdiff1d(np.arange(len(reduced)), sample, assume_unique=True)
    coords[sample] = embedding
    coords[rest] = embedding.transform(reduced[rest])  # each placed against the fitted map, which stays fixed
    return coords


@register_method("umap")
def umap(features: np.ndarray, seed: int = 0, threads: int = 1, n_neighbors: int = 15, min_dist: float = 0.1,
         init: str = "spectral", pca_dims: int = 50, **_options) -> np.ndarray:
    import umap as umap_learn

    # random_state makes UMAP single-threaded, which is what keeps it reproducible.
    reducer = umap_learn.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, init=init, random_state=seed, n_jobs=1)
    return reducer.fit_transform(pca_reduce(features, pca_dims, seed)).astype(np.float64)


def _pca_dims(n: int, dims: int, used: dict) -> None:
    if dims > used["pca_dims"]:  # PCA gives at most N components
        used["pca_dims"] = capped("pca_dims", used["pca_dims"], n, n)


def _tsne_options(n: int, dims: int, options: dict) -> dict:
    used = {"perplexity": 30.0, "pca_dims": 50, "fit_max": FIT_MAX, **options}
    fitted = min(n, used["fit_max"] or n)  # the images the map is fitted on
    # openTSNE needs 3 x perplexity < the images the map is fitted on
    used["perplexity"] = capped("perplexity", float(used["perplexity"]), (fitted - 1) / 3, n)
    _pca_dims(n, dims, used)
    used["initialization"] = "pca" if min(dims, used["pca_dims"]) >= 2 else "random"  # PCA init needs 2 dims
    # FFT gradients cost ~10 s on any N (a fixed interpolation grid); Barnes-Hut takes 0.1 s on 30 images.
    used.setdefault("negative_gradient_method", "fft" if fitted >= TSNE_FFT_FROM else "bh")
    if fitted < n:
        log.info("t-SNE fitted on a sample of %d of %d images (fit_max); the others are placed on its map", fitted, n)
        used["placed"] = n - fitted  # the sidecar says how many images were placed, not fitted
    return used


def _umap_options(n: int, dims: int, options: dict) -> dict:
    used = {"n_neighbors": 15, "min_dist": 0.1, "pca_dims": 50, **options}
    used["n_neighbors"] = capped("n_neighbors", used["n_neighbors"], n - 1, n)
    _pca_dims(n, dims, used)
    # The spectral initialization needs more eigenvectors than 3 points have.
    used["init"] = "spectral" if n > 3 else "random"
    return used


def _pca_options(n: int, dims: int, options: dict) -> dict:
    return {"n_components": min(2, n - 1, dims)}


# Per built-in method: the parameters it will run with on N images of D features.
OPTIONS: dict[str, Callable[[int, int, dict], dict]] = {"pca": _pca_options, "tsne": _tsne_options,
                                                        "umap": _umap_options}


def fit_embedding(features: np.ndarray, method: str, seed: int = 0, threads: int = 1,
                  **options) -> tuple[np.ndarray, dict]:
    """An (N, 2) map of (N, D) features (standardized) by a registered method, and the
    parameters it was made with: capped for small N, or the fallback layout and why."""
    if method not in METHODS:
        raise EmbedError(f"unknown embedding method {method!r}; known: {', '.join(sorted(METHODS))}")
    features = np.asarray(features)
    if features.ndim != 2 or len(features) < 2 or features.shape[1] < 1:
        raise EmbedError(f"a map needs at least 2 feature vectors in an (N, D) array, got shape {features.shape}")
    n, dims = features.shape
    require_finite(features, EmbedError)
    z = standardize(features)
    if not z.any():
        log.warning("all %d feature vectors are identical: the %s map puts every image at (0, 0)", n, method)
        return np.zeros((n, 2)), {"layout": "identical features: every image at (0, 0)"}
    if n < MIN_IMAGES.get(method, 2):
        log.warning("%s needs at least %d images, got %d: using the PCA layout", method, MIN_IMAGES[method], n)
        return pca(z), {"layout": f"pca (a {method} map needs at least {MIN_IMAGES[method]} images)"}
    used = OPTIONS[method](n, dims, dict(options)) if method in OPTIONS else dict(options)
    try:
        coords = np.asarray(METHODS[method](z, seed=seed, threads=threads, **used), dtype=np.float64)
    except (ValueError, TypeError) as error:
        raise EmbedError(f"{method} could not map {n} images with {used}: {error}") from error
    if coords.shape != (n, 2) or not np.isfinite(coords).all():
        raise EmbedError(f"{method} gave no finite (N, 2) map for {n} images (shape {coords.shape})")
    return coords, used


def embed(features: np.ndarray, method: str, seed: int = 0, threads: int = 1, **options) -> np.ndarray:
    """An (N, 2) map of (N, D) features by a registered method (see :func:`fit_embedding`)."""
    return fit_embedding(features, method, seed=seed, threads=threads, **options)[0]


def trust_neighbors(n: int, k: int, max_points: int = 5000) -> int:
    """The neighbourhood trustworthiness can use on ``n`` images: scikit-learn needs k < n / 2
    (on the subsample of ``max_points``); 0 when undefined (fewer than 3 images)."""
    return int(capped("trust_neighbors", k, (min(n, max_points) - 1) // 2, n))


def trustworthiness(features: np.ndarray, coords: np.ndarray, n_neighbors: int = 10, max_points: int = 5000,
                    seed: int = 0) -> float | None:
    """scikit-learn's trustworthiness on standardized features (1 = every map neighbour
    is a true neighbour); on a seeded subsample of ``max_points`` when larger (O(N^2)).
    ``None`` when undefined: fewer than 3 images."""
    from sklearn.manifold import trustworthiness as sk_trust

    k = trust_neighbors(len(features), n_neighbors, max_points)
    if k < 1:
        log.warning("trustworthiness is undefined for %d images (it needs at least 3)", len(features))
        return None
    features = standardize(features)
    if len(features) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(features), max_points, replace=False))
        features, coords = features[keep], coords[keep]
    return float(sk_trust(features, coords, n_neighbors=k))


def point_style(n: int) -> tuple[float, float]:
    """(marker area in pt^2, alpha) for a scatter of ``n`` points: together the points cover
    about the same area of the plot at any N, so 2 points are large and 100,000 small and
    translucent enough to show density."""
    area = float(np.clip(10_000 / max(n, 1), 1.5, 80.0))
    alpha = 0.8 if n <= 2000 else max(0.3, 0.8 * (2000 / n) ** 0.25)
    return area, alpha


LEGEND_MARKER_AREA = 30.0  # pt^2: legend markers keep one size whatever the points' size


def scatter(coords: np.ndarray, labels: list[str], title: str, size_inches: float = 6.0):
    """Points coloured by label, with a legend; one class is drawn in one colour and says so."""
    import matplotlib.pyplot as plt

    classes = sorted(set(labels))
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    fig, ax = plt.subplots(figsize=(size_inches + 2.2, size_inches))
    labels_arr = np.asarray(labels)
    area, alpha = point_style(len(coords))
    for i, name in enumerate(classes):
        mask = labels_arr == name
        ax.scatter(coords[mask, 0], coords[mask, 1], s=area, color=cmap(i % cmap.N), label=f"{name} ({mask.sum()})",
                   linewidths=0, alpha=alpha)
    legend_title = "label" if len(classes) > 1 else "label (one class:\ncolour carries no information)"
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, title=legend_title, title_fontsize=7,
              markerscale=float(np.sqrt(LEGEND_MARKER_AREA / area)), frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(left=0.03, right=0.72, bottom=0.03, top=0.92)
    return fig


ATLAS_MAX_GRID = 24  # cells per side of an automatic atlas at most (576 thumbnails)


def atlas_layout(n: int, grid: int | str = "auto", cell_px: int = 32,
                 max_grid: int = ATLAS_MAX_GRID) -> tuple[int, int]:
    """(cells per side, cell side in px) for an atlas of ``n`` images. ``grid="auto"``:
    about sqrt(n) cells per side, from 2 to ``max_grid``, with cells enlarged so the atlas
    is as large as a ``max_grid`` x ``cell_px`` one (a few images are shown big, not as a
    sparse grid of stamps). An integer grid is used as given."""
    if grid != "auto":
        return int(grid), int(cell_px)
    side = min(max(2, math.ceil(math.sqrt(n))), max_grid)
    return side, cell_px * max_grid // side


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

    pad = cell_px // 48  # a white margin between large thumbnails (none at the default 32 px)
    inner = cell_px - 2 * pad
    cells = atlas_cells(coords, grid)
    canvas = np.full((grid * cell_px, grid * cell_px, 3), 255, np.uint8)
    for (cx, cy), index in cells.items():
        image = Image.fromarray(thumbnail(index)).convert("RGB").resize((inner, inner), Image.Resampling.BILINEAR)
        top, left = (grid - 1 - cy) * cell_px + pad, cx * cell_px + pad
        canvas[top : top + inner, left : left + inner] = np.asarray(image)
    # The extreme points fill the first and last row and column, unless every point shares
    # a coordinate (two images, identical features): then the empty rows are cut.
    rows, cols = [grid - 1 - cy for _, cy in cells], [cx for cx, _ in cells]
    canvas = canvas[min(rows) * cell_px : (max(rows) + 1) * cell_px, min(cols) * cell_px : (max(cols) + 1) * cell_px]
    width = min(12.0, grid * cell_px / 100)
    height = width * canvas.shape[0] / canvas.shape[1]
    fig, ax = plt.subplots(figsize=(width, height + 0.4))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 0.4 / (height + 0.4))
    return fig
