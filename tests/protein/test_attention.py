import numpy as np
import pytest
import torch

from featvis.protein.attention import merge_tiles, summarize, summarize_window, tile_windows


def np_apc(x):
    """NumPy reference: Dunn et al. average product correction."""
    x = np.asarray(x, dtype=np.float64)
    return x - np.outer(x.sum(1), x.sum(0)) / x.sum()


@pytest.fixture(scope="module")
def reference(tiny_esm, tiny_fair):
    """fair-esm's own all-heads output for the weights ``tiny_esm`` runs in transformers."""
    seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQ"
    with torch.no_grad():
        out = tiny_fair(tiny_esm.encode(seq), need_head_weights=True, return_contacts=True)
    heads = out["attentions"][0].double().numpy()[:, :, 1:-1, 1:-1]  # (layers, heads, L, L)
    return seq, heads, out, summarize_window(tiny_esm, seq)


def test_streamed_maps_equal_fair_esm_all_heads_output(reference):
    seq, heads, out, s = reference
    np.testing.assert_allclose(s.mean, heads.mean(1).mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.max, heads.max(1).mean(0), rtol=1e-5, atol=1e-7)
    sym = heads + heads.transpose(0, 1, 3, 2)
    apc_ref = np.mean([[np_apc(sym[layer, h]) for h in range(sym.shape[1])] for layer in range(sym.shape[0])], (0, 1))
    np.testing.assert_allclose(s.apc, apc_ref, rtol=1e-4, atol=1e-6)
    received = heads.mean(1).sum(1)  # (layers, L): attention each residue receives (column sums)
    np.testing.assert_allclose(s.importance_mean, received / received.mean(1, keepdims=True), rtol=1e-5)


def test_streamed_contact_head_equals_fair_esm_contacts(reference):
    _, _, out, s = reference
    np.testing.assert_allclose(s.contacts, out["contacts"][0].numpy(), rtol=1e-5, atol=1e-6)


def test_rollout_matches_a_numpy_reference(reference):
    _, _, out, s = reference
    full = out["attentions"][0].double().numpy().mean(1)  # (layers, T, T) head means
    eye = np.eye(full.shape[-1])
    rollout = eye
    for layer in full:
        mixed = 0.5 * layer + 0.5 * eye
        rollout = (mixed / mixed.sum(1, keepdims=True)) @ rollout
    np.testing.assert_allclose(s.rollout, rollout[1:-1, 1:-1], rtol=1e-4, atol=1e-7)


def test_logits_are_unchanged_by_the_hooks(tiny_esm, reference):
    seq, _, out, s = reference
    expected = torch.log_softmax(out["logits"][0, 1:-1, tiny_esm.aa_ids], -1).numpy()
    np.testing.assert_allclose(s.log_probs, expected, rtol=1e-4, atol=1e-4)  # two implementations: float order


def test_logits_only_pass_equals_fair_esm_with_a_mask(tiny_esm, tiny_fair, reference):
    seq = reference[0]
    tokens = tiny_esm.encode(seq).repeat(2, 1)
    tokens[0, 5], tokens[1, 9] = tiny_esm.mask_id, tiny_esm.mask_id
    with torch.no_grad():
        expected, got = tiny_fair(tokens)["logits"], tiny_esm.logits(tokens)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-4)


def test_apc_against_numpy():
    from featvis.protein.attention import apc

    x = np.random.default_rng(1).random((7, 7))
    np.testing.assert_allclose(apc(torch.from_numpy(x)).numpy(), np_apc(x))


def test_tile_windows_cover_the_sequence():
    tiles = tile_windows(25, 10, 4)
    assert tiles == [(0, 10), (6, 16), (12, 22), (15, 25)]
    assert tile_windows(8, 10, 4) == [(0, 8)]
    with pytest.raises(ValueError, match="overlap"):
        tile_windows(25, 10, 10)


def test_tiled_equals_untiled_when_the_sequence_fits(tiny_esm, sequence):
    direct = summarize_window(tiny_esm, sequence)
    tiled = summarize(tiny_esm, sequence, window=len(sequence))
    for name, value in direct.as_arrays().items():
        np.testing.assert_array_equal(getattr(tiled, name), value)


def test_tiles_merge_to_window_results(tiny_esm, sequence):
    seq = sequence[:60]
    merged = summarize(tiny_esm, seq, window=40, overlap=20)
    a, b = summarize_window(tiny_esm, seq[:40]), summarize_window(tiny_esm, seq[20:60])
    # Residues only one window holds equal that window's result; overlaps are the mean.
    np.testing.assert_allclose(merged.importance_mean[:, :20], a.importance_mean[:, :20], rtol=1e-6)
    np.testing.assert_allclose(merged.importance_mean[:, 40:], b.importance_mean[:, 20:], rtol=1e-6)
    np.testing.assert_allclose(
        merged.importance_mean[:, 20:40],
        (a.importance_mean[:, 20:] + b.importance_mean[:, :20]) / 2,
        rtol=1e-6,
    )
    np.testing.assert_allclose(merged.mean[:20, :20], a.mean[:20, :20], rtol=1e-6)
    assert np.isnan(merged.mean[0, 59])  # no window holds both ends


def test_merge_of_one_tile_is_identity(tiny_esm, sequence):
    s = summarize_window(tiny_esm, sequence[:30])
    merged = merge_tiles([(0, s)], 30)
    np.testing.assert_allclose(merged.apc, s.apc, rtol=1e-6)


def test_long_sequence_is_tiled_at_the_model_limit(tiny_esm, sequence, monkeypatch):
    monkeypatch.setattr(tiny_esm, "max_residues", 50)
    s = summarize(tiny_esm, sequence, overlap=10)
    assert s.mean.shape == (len(sequence), len(sequence))
    assert s.importance_mean.shape == (6, len(sequence))
    assert not np.isnan(s.importance_mean).any()
