"""Concepts library: known answers (planted dictionaries, exactly low-rank data), the streamed sample
and the streamed codes merge exactly across shards, and bad input stops with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featvis.concepts.methods import ConceptError, fit, from_state
from featvis.concepts.quality import CodeStats, matched_cosine, merge_stats
from featvis.concepts.sampling import merge_samples, sample_positions
from featvis.concepts.stream import codes_map, encode_pass
from featvis.vision.mining import merge_topk


@pytest.fixture(autouse=True)
def one_thread():
    """Small matrix products: a second thread on a shared core only adds waiting (tenfold here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def planted(n: int = 3000, concepts: int = 8, channels: int = 32, active: int = 2, seed: int = 1):
    """Data made from known non-negative atoms, ``active`` of them per row with positive weights."""
    gen = torch.Generator().manual_seed(seed)
    atoms = torch.rand(concepts, channels, generator=gen) ** 3
    atoms = atoms / atoms.norm(dim=1, keepdim=True)
    which = torch.stack([torch.randperm(concepts, generator=gen)[:active] for _ in range(n)])
    codes = torch.zeros(n, concepts).scatter_(1, which, torch.rand(n, active, generator=gen) + 0.5)
    return codes @ atoms, atoms


def r2(x: torch.Tensor, recon: torch.Tensor) -> float:
    return float(1 - ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


@pytest.mark.parametrize("method,settings", [("nmf", {"steps": 150}),
                                             ("topk_sae", {"k": 2, "steps": 600, "lr": 1e-2, "batch_size": 512})])
def test_planted_atoms_are_recovered(method, settings):
    x, atoms = planted()
    dictionary = fit(method, x, 8, settings, seed=0)
    mean, per_atom, _ = matched_cosine(dictionary.atoms, atoms)
    assert mean > 0.98 and per_atom.min() > 0.9, (mean, per_atom)
    assert r2(x, dictionary.decode(dictionary.encode(x))) > 0.97


def test_topk_sae_keeps_k_codes_and_a_unit_norm_decoder():
    x, _ = planted(n=1000)
    dictionary = fit("topk_sae", x, 12, {"k": 3, "steps": 50}, seed=0)
    codes = dictionary.encode(x)
    assert int((codes > 0).sum(1).max()) <= 3 and bool((codes >= 0).all())
    assert torch.allclose(dictionary.atoms.norm(dim=1), torch.ones(12), atol=1e-5)
    assert "dead_latents" in dictionary.history
    again = from_state(dictionary.state())
    assert torch.equal(again.encode(x), codes)


def test_topk_sae_encoder_starts_as_decoder_transpose():
    x, _ = planted(n=600)
    dictionary = fit("topk_sae", x, 6, {"k": 2, "steps": 0}, seed=3)
    assert torch.equal(dictionary.encoder["weight"], dictionary.atoms.T)


def test_nmf_on_exactly_low_rank_data_reconstructs_all_variance():
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(2000, 5, generator=gen) @ torch.rand(5, 40, generator=gen)
    dictionary = fit("nmf", x, 5, {"steps": 300}, seed=0)
    assert r2(x, dictionary.decode(dictionary.encode(x))) > 0.999


def test_fits_are_seeded_and_stability_reads_seed_dependence():
    x, _ = planted(n=1500)
    a = fit("nmf", x, 8, {"steps": 60}, seed=0)
    assert torch.equal(a.atoms, fit("nmf", x, 8, {"steps": 60}, seed=0).atoms)
    mean, _, partner = matched_cosine(a.atoms, a.atoms[torch.tensor([3, 1, 0, 2, 7, 6, 5, 4])])
    assert mean == pytest.approx(1.0) and partner.tolist() == [2, 1, 3, 0, 7, 6, 5, 4]
    noise = torch.randn(8, 32, generator=torch.Generator().manual_seed(0))
    assert matched_cosine(a.atoms, noise)[0] < 0.5


def test_bad_input_stops_with_a_message():
    x, _ = planted(n=100)
    with pytest.raises(ConceptError, match="100 sampled positions for 200 concepts"):
        fit("topk_sae", x, 200, {}, seed=0)
    with pytest.raises(ConceptError, match="every sampled activation is zero"):
        fit("nmf", torch.zeros(50, 4), 3, {}, seed=0)
    with pytest.raises(ConceptError, match="relu: true.*shift: min"):
        fit("nmf", x - 0.5, 4, {"steps": 5}, seed=0)
    for option in ({"relu": True}, {"shift": "min"}):
        codes = fit("nmf", x - 0.5, 4, {"steps": 5, **option}, seed=0).encode(x - 0.5)
        assert bool((codes >= 0).all())
    with pytest.raises(ConceptError, match="unknown concept method 'pca'"):
        fit("pca", x, 4, {}, seed=0)


def activations(n: int = 20, channels: int = 6, side: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, channels, side, side, generator=torch.Generator().manual_seed(seed))


def batches(x: torch.Tensor, size: int, offset: int = 0):
    return [(offset + i, x[i : i + size]) for i in range(0, len(x), size)]


def test_position_sample_is_bounded_seeded_and_merges_exactly_across_shards():
    x = activations()
    whole = sample_positions(batches(x, 7), budget=50, positions_per_image=4, seed=2)
    assert whole.rows.shape == (50, 6) and whole.drawn == 80 and whole.seen_positions == 20 * 25
    other_batching = sample_positions(batches(x, 3), budget=50, positions_per_image=4, seed=2)
    shards = merge_samples([sample_positions(batches(x[:8], 5), 50, 4, 2),
                            sample_positions(batches(x[8:], 5, offset=8), 50, 4, 2)])
    for sample in (other_batching, shards):
        assert torch.equal(sample.ordered_rows(), whole.ordered_rows())
    # every sampled row is a real position of its image
    for row, image, place in zip(whole.rows, whole.image, whole.position):
        assert torch.equal(row, x[image, :, place // 5, place % 5])
    assert not torch.equal(sample_positions(batches(x, 7), 50, 4, seed=3).ordered_rows(), whole.ordered_rows())


def test_codes_top_k_and_statistics_merge_exactly_across_shards():
    x = activations(n=16)
    dictionary = fit("nmf", x.permute(0, 2, 3, 1).reshape(-1, 6), 4, {"steps": 20}, seed=0)
    labels = np.arange(16) % 3
    top, stats = encode_pass(dictionary, batches(x, 5), k=3, labels=labels, n_labels=3)
    parts = [encode_pass(dictionary, batches(x[a:b], 4, offset=a), 3, labels, 3) for a, b in ((0, 6), (6, 16))]
    merged = merge_topk([p[0] for p in parts], 3, layer="concepts")
    for key in ("value", "image", "y", "x"):
        np.testing.assert_array_equal(merged[key], merge_topk([top], 3, layer="concepts")[key])
    total = merge_stats([p[1] for p in parts])
    np.testing.assert_allclose(total.active, stats.active)
    assert total.r2() == pytest.approx(stats.r2())
    # the top entry of a concept is the largest code anywhere in the dataset, at its position
    codes = codes_map(dictionary, x)
    best = codes[:, 0].flatten().argmax()
    image, y, xx = np.unravel_index(int(best), codes[:, 0].shape)
    assert (merged["image"][0, 0], merged["y"][0, 0], merged["x"][0, 0]) == (image, y, xx)
    assert stats.class_count.tolist() == [6, 5, 5]


def test_a_concept_that_never_fires_counts_as_dead():
    stats = CodeStats.empty(2, 3, 0)
    x = torch.rand(10, 2)
    codes = torch.cat([torch.rand(10, 2) + 0.1, torch.zeros(10, 1)], 1)
    stats.add(x, codes, x)
    assert stats.dead().tolist() == [2] and stats.frequency().tolist() == [1.0, 1.0, 0.0]
    assert stats.l0() == 2.0 and stats.r2() == 1.0
