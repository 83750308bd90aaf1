"""Nearest images in a layer's pooled feature space, by L2 or cosine distance.

Exact search computes distances in float64 in blocks of queries (memory O(block x N));
ties go to the lower image index. For 100k+ images a faiss index can be chosen
(``faiss_flat`` exact, ``faiss_hnsw`` approximate); indexes live in a registry.
A query is never its own neighbour, so a dataset of N images gives at most N - 1
neighbours: a larger k is capped there, with a log line. Features with NaN or infinite
values (a model that gave non-finite activations, which the features stage reports) are refused
with an error naming the images: such a row would poison every distance it takes part in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from featvis.core.registry import registrar
from featvis.vision.finite import require_finite

log = logging.getLogger(__name__)

METRICS = ("l2", "cosine")


class NeighborError(ValueError):
    """A nearest-neighbour request that cannot be answered."""


Search = Callable[[np.ndarray, np.ndarray, int, str, int], tuple[np.ndarray, np.ndarray]]
INDEXES: dict[str, Search] = {}


register_index = registrar(
    INDEXES, "Add ``fn(features, queries, k, metric, threads) -> (indices, distances)``, each (Q, k)."
)


def _normalize(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def distances(features: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """(Q, N) distances: Euclidean, or 1 - cosine similarity."""
    x, q = np.asarray(features, np.float64), np.asarray(query, np.float64)
    if metric == "cosine":
        return 1.0 - _normalize(q) @ _normalize(x).T
    squared = (q * q).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * q @ x.T
    return np.sqrt(np.maximum(squared, 0.0))


@register_index("exact")
def exact(features: np.ndarray, queries: np.ndarray, k: int, metric: str, threads: int = 1,
          block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    indices, dists = [], []
    for start in range(0, len(queries), block):
        rows = queries[start : start + block]
        d = distances(features, features[rows], metric)
        d[np.arange(len(rows)), rows] = np.inf  # never the query itself
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        indices.append(order)
        dists.append(np.take_along_axis(d, order, axis=1))
    return np.concatenate(indices), np.concatenate(dists)


def _faiss_search(index_factory: Callable[[int], object]) -> Search:
    def search(features: np.ndarray, queries: np.ndarray, k: int, metric: str, threads: int = 1):
        import faiss

        faiss.omp_set_num_threads(threads)
        x = np.ascontiguousarray(features, np.float32)
        if metric == "cosine":
            x = np.ascontiguousarray(_normalize(x).astype(np.float32))
        index = index_factory(x.shape[1])
        index.add(x)
        found_d, found_i = index.search(x[queries], k + 1)
        indices, dists = np.zeros((len(queries), k), np.int64), np.zeros((len(queries), k))
        for row, (q, ids, ds) in enumerate(zip(queries, found_i, found_d)):
            keep = [(i, d) for i, d in zip(ids, ds) if i != q and i >= 0][:k]
            indices[row] = [i for i, _ in keep]
            # faiss L2 indexes return squared distances; report the same scale as exact search
            dist = np.sqrt(np.maximum([d for _, d in keep], 0.0))
            dists[row] = dist if metric == "l2" else dist**2 / 2.0
        return indices, dists

    return search


def _hnsw(dim: int):
    import faiss

    index = faiss.IndexHNSWFlat(dim, 32)
    index.hnsw.efSearch = 128
    return index


def _flat(dim: int):
    import faiss

    return faiss.IndexFlatL2(dim)


INDEXES["faiss_flat"] = _faiss_search(_flat)
INDEXES["faiss_hnsw"] = _faiss_search(_hnsw)


def neighbor_count(k: int, n: int) -> int:
    """``k`` capped at the ``n - 1`` other images a query has (logged when capped)."""
    if n < 2:
        raise NeighborError(f"nearest neighbours need at least 2 images; the dataset has {n}")
    if k > n - 1:
        log.info("neighbors k %d capped to %d for %d images (a query is not its own neighbour)", k, n - 1, n)
    return min(k, n - 1)


def nearest(features: np.ndarray, queries: Sequence[int], k: int, metric: str = "l2", index: str = "exact",
            threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest images to each query row: (Q, k) indices and distances, nearest first;
    k is capped at N - 1 (see :func:`neighbor_count`)."""
    features = np.asarray(features)
    if metric not in METRICS:
        raise NeighborError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    if index not in INDEXES:
        raise NeighborError(f"unknown index {index!r}; known: {', '.join(sorted(INDEXES))}")
    require_finite(features, NeighborError)
    k = neighbor_count(k, len(features))
    queries = np.asarray(queries, dtype=np.int64)
    return INDEXES[index](features, queries, k, metric, threads)


def resolve_queries(manifest: pd.DataFrame, queries: Sequence[int | str], n_queries: int) -> list[int]:
    """Manifest row indices for queries given as row indices or image paths (or file
    names, when unique); ``n_queries`` evenly spaced rows when none are given."""
    n = len(manifest)
    if not queries:
        if n_queries > n:
            log.info("n_queries %d capped to %d: the dataset has %d images", n_queries, n, n)
        return sorted({int(i) for i in np.linspace(0, n - 1, min(n_queries, n)).round()})
    paths = manifest["path"].tolist()
    rows = []
    for query in queries:
        if isinstance(query, (int, np.integer)):
            if not 0 <= query < n:
                raise NeighborError(f"query index {query} is not in the dataset (rows 0..{n - 1})")
            rows.append(int(query))
            continue
        matches = [i for i, p in enumerate(paths) if p == query or p.endswith("/" + str(query).lstrip("/"))]
        if len(matches) != 1:
            hint = "it is not in the dataset's manifest" if not matches else f"{len(matches)} images match"
            raise NeighborError(f"query image {query!r}: {hint}; give a manifest path or row index")
        rows.append(matches[0])
    return rows


def neighbor_grid(images: list[np.ndarray], query_rows: Sequence[int], indices: np.ndarray, dists: np.ndarray,
                  labels: Sequence[str], title: str, cell_inches: float = 0.8):
    """Rows: the query, a gap, then its neighbours nearest first; titles give label and distance."""
    from featvis.core.figures import image_grid

    k = indices.shape[1]
    blank = np.full_like(images[0], 255)
    cells, titles = [], []
    for q, ids, ds in zip(query_rows, indices, dists):
        cells += [images[q], blank] + [images[i] for i in ids]
        titles += [f"query #{q} {labels[q][:10]}", ""] + [f"{d:.3g} {labels[i][:10]}" for i, d in zip(ids, ds)]
    return image_grid(cells, ncols=k + 2, titles=titles, cell_inches=cell_inches, suptitle=title,
                      value_range=(0, 255))
