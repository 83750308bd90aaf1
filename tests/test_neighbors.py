"""Nearest neighbours equal a brute-force reference; faiss agrees; bad queries are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from featvis.vision.neighbors import NeighborError, nearest, resolve_queries


def brute_force(x, q, k, metric):
    out_i, out_d = [], []
    for row in q:
        if metric == "l2":
            d = np.array([np.sqrt(((x[j] - x[row]) ** 2).sum()) for j in range(len(x))])
        else:
            d = np.array([1 - x[j] @ x[row] / np.linalg.norm(x[j]) / np.linalg.norm(x[row]) for j in range(len(x))])
        candidates = sorted((d[j], j) for j in range(len(x)) if j != row)[:k]
        out_i.append([j for _, j in candidates])
        out_d.append([v for v, _ in candidates])
    return np.array(out_i), np.array(out_d)


@pytest.fixture(scope="module")
def features():
    rng = np.random.default_rng(1)
    return rng.normal(size=(300, 16)).astype(np.float32) + rng.integers(0, 3, (300, 1))


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_exact_equals_brute_force(features, metric):
    queries = [0, 7, 150, 299]
    indices, dists = nearest(features, queries, 6, metric)
    ref_i, ref_d = brute_force(features.astype(np.float64), queries, 6, metric)
    np.testing.assert_array_equal(indices, ref_i)
    np.testing.assert_allclose(dists, ref_d, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_faiss_flat_and_hnsw_agree(features, metric):
    queries = list(range(0, 300, 10))
    exact_i, exact_d = nearest(features, queries, 5, metric)
    flat_i, flat_d = nearest(features, queries, 5, metric, index="faiss_flat")
    np.testing.assert_array_equal(flat_i, exact_i)
    np.testing.assert_allclose(flat_d, exact_d, rtol=1e-4, atol=1e-4)
    hnsw_i, _ = nearest(features, queries, 5, metric, index="faiss_hnsw")
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(hnsw_i, exact_i)])
    assert recall > 0.9


def test_query_never_its_own_neighbour():
    x = np.zeros((5, 3))  # all identical: ties everywhere, lower index first
    indices, dists = nearest(x, [0, 2], 3)
    assert indices.tolist() == [[1, 2, 3], [0, 1, 3]]
    assert np.all(dists == 0)


def test_query_not_in_dataset():
    manifest = pd.DataFrame({"path": ["/d/a/1.png", "/d/b/2.png", "/d/b/3.png"], "label": ["a", "b", "b"]})
    assert resolve_queries(manifest, ["b/2.png", 0], 4) == [1, 0]
    assert resolve_queries(manifest, [], 2) == [0, 2]
    with pytest.raises(NeighborError, match="not in the dataset"):
        resolve_queries(manifest, ["/elsewhere/cat.png"], 1)
    with pytest.raises(NeighborError, match="not in the dataset"):
        resolve_queries(manifest, [3], 1)


def test_k_capped_and_unknown_names(features):
    indices, _ = nearest(features[:5], [0, 4], 300)  # at most the 4 other images
    assert indices.shape == (2, 4) and sorted(indices[0]) == [1, 2, 3, 4]
    with pytest.raises(NeighborError, match="at least 2 images"):
        nearest(features[:1], [0], 1)
    with pytest.raises(NeighborError, match="unknown metric"):
        nearest(features, [0], 3, "manhattan")
    with pytest.raises(NeighborError, match="unknown index"):
        nearest(features, [0], 3, index="annoy")
