"""Embeddings: registry, trustworthiness, the atlas snapping, and the one-class case."""

from __future__ import annotations

import numpy as np
import pytest

from featvis.vision.embed import (
    METHODS,
    EmbedError,
    atlas_cells,
    embed,
    fit_embedding,
    fit_sample,
    scatter,
    standardize,
    trustworthiness,
)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    centres = rng.normal(scale=8, size=(3, 20))
    return centres[labels] + rng.normal(size=(120, 20)), labels


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_maps_keep_clusters_apart(blobs, method):
    x, labels = blobs
    coords = embed(x, method, seed=0, threads=1, perplexity=10)
    assert coords.shape == (120, 2)
    centroids = np.array([coords[labels == c].mean(0) for c in range(3)])
    spread = max(np.linalg.norm(coords[labels == c] - centroids[c], axis=1).mean() for c in range(3))
    gaps = min(np.linalg.norm(centroids[a] - centroids[b]) for a in range(3) for b in range(a + 1, 3))
    assert gaps > 2 * spread
    assert trustworthiness(x, coords, 5) > 0.85  # within-cluster noise is isotropic: no map keeps it all


@pytest.mark.parametrize("gradient", ["fft", "bh"])  # fft: what 1,000+ images use; bh below
def test_tsne_is_reproducible(blobs, gradient):
    x, _ = blobs
    options = {"perplexity": 10, "negative_gradient_method": gradient}
    np.testing.assert_array_equal(embed(x, "tsne", seed=3, threads=1, **options),
                                  embed(x, "tsne", seed=3, threads=1, **options))


def test_tsne_fits_a_sample_and_places_the_rest(blobs):
    """Above fit_max, the sampled images get exactly the map t-SNE fits on them alone, and the
    others are placed among their own cluster."""
    x, labels = blobs
    coords, used = fit_embedding(x, "tsne", seed=2, threads=1, perplexity=10, fit_max=60)
    assert used["placed"] == 60 and coords.shape == (120, 2) and np.isfinite(coords).all()
    sample = fit_sample(120, 60, 2)
    alone = METHODS["tsne"](standardize(x)[sample], seed=2, threads=1, **{**used, "fit_max": None})
    np.testing.assert_array_equal(coords[sample], alone)
    placed = np.setdiff1d(np.arange(120), sample)
    centroids = np.array([coords[sample][labels[sample] == c].mean(0) for c in range(3)])
    nearest = np.linalg.norm(coords[placed, None] - centroids[None], axis=2).argmin(1)
    np.testing.assert_array_equal(nearest, labels[placed])
    np.testing.assert_array_equal(coords, fit_embedding(x, "tsne", seed=2, threads=1, perplexity=10, fit_max=60)[0])


def test_fit_sample_only_above_fit_max():
    assert fit_sample(100, 100, 0) is None and fit_sample(100, None, 0) is None
    rows = fit_sample(1000, 10, 5)
    assert len(set(rows)) == 10 and list(rows) == sorted(rows)
    np.testing.assert_array_equal(rows, fit_sample(1000, 10, 5))


def test_trustworthiness_known_answers(blobs):
    x, _ = blobs
    from featvis.vision.embed import standardize

    assert trustworthiness(x, standardize(x)[:, :20], 5) == pytest.approx(1.0)
    random = np.random.default_rng(0).normal(size=(120, 2))
    assert trustworthiness(x, random, 5) < 0.7


def test_pca_equals_numpy_svd(blobs):
    from featvis.vision.embed import standardize

    x, _ = blobs
    z = standardize(x)
    _, _, vt = np.linalg.svd(z - z.mean(0), full_matrices=False)
    reference = (z - z.mean(0)) @ vt[:2].T
    coords = embed(x, "pca")
    np.testing.assert_allclose(np.abs(coords), np.abs(reference), atol=1e-8)


def test_atlas_snaps_to_nearest_centre():
    # On a 2x2 grid over [0, 1]^2: point 1 is nearer the centre of cell (0, 0) than point 0;
    # points 2 and 4 tie in cell (1, 1) and the lower index wins.
    coords = np.array([[0.0, 0.0], [0.1, 0.1], [1.0, 1.0], [0.45, 0.55], [0.5, 0.5]])
    assert atlas_cells(coords, 2) == {(0, 0): 1, (1, 1): 2, (0, 1): 3}


def test_one_class_label_is_drawn_and_said(blobs):
    x, _ = blobs
    coords = embed(x, "pca")
    fig = scatter(coords, ["only"] * len(coords), "one class")
    legend = fig.axes[0].get_legend()
    assert "one class" in legend.get_title().get_text()
    assert [t.get_text() for t in legend.get_texts()] == ["only (120)"]


def test_bad_input():
    with pytest.raises(EmbedError, match="unknown embedding method"):
        embed(np.zeros((10, 3)), "isomap")
    with pytest.raises(EmbedError, match="at least 2"):
        embed(np.zeros((1, 3)), "pca")
    with pytest.raises(EmbedError, match="at least 2"):
        embed(np.zeros(5), "pca")
