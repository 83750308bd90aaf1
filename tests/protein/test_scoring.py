import numpy as np
import pytest
import torch

from featvis.protein.scoring import masked_log_probs, masked_marginal, wildtype_marginal, window_around
from featvis.protein.sequences import SequenceError, parse_variant


def test_masked_marginal_matches_a_direct_masked_pass(tiny_esm, tiny_fair, sequence):
    variants = [parse_variant("K2A"), parse_variant("T3W"), parse_variant("K2E")]
    scores = masked_marginal(tiny_esm, sequence, variants)
    tokens = tiny_esm.encode(sequence)
    tokens[0, 2] = tiny_esm.mask_id  # residue 2 sits after the start token
    with torch.no_grad():  # fair-esm's own forward pass with the same weights: the reference
        logits = tiny_fair(tokens)["logits"][0, 2]
    alphabet = tiny_fair.alphabet
    expected = float(logits[alphabet.get_idx("A")] - logits[alphabet.get_idx("K")])
    assert scores[0] == pytest.approx(expected, abs=2e-4)
    assert scores[2] != pytest.approx(scores[0])


def test_wildtype_marginal_reads_the_variant_row():
    log_probs = np.log(np.full((3, 20), 0.05))
    log_probs[1, 0] = np.log(0.5)  # 'A' at residue 2
    log_probs[1, 5] = np.log(0.05)  # 'G'
    (score,) = wildtype_marginal(log_probs, "MGK", [parse_variant("G2A")])
    assert score == pytest.approx(np.log(10))


def test_scores_reject_a_wild_type_mismatch(tiny_esm, sequence):
    with pytest.raises(SequenceError, match="has K"):
        masked_marginal(tiny_esm, sequence, [parse_variant("A2C")])


def test_window_around_keeps_the_position():
    assert window_around(100, 95, 40) == (60, 100)
    assert window_around(100, 3, 40) == (0, 40)
    assert window_around(30, 3, 40) == (0, 30)


def test_masked_scores_in_a_window_beyond_the_model_limit(tiny_esm, sequence, monkeypatch):
    full = masked_log_probs(tiny_esm, sequence[:30], [25])
    monkeypatch.setattr(tiny_esm, "max_residues", 30)
    windowed = masked_log_probs(tiny_esm, sequence[:30] + sequence[30:50], [25])
    # The position's window is sequence[10:40]; a direct pass on that window must agree.
    direct = masked_log_probs(tiny_esm, (sequence[:30] + sequence[30:50])[10:40], [15])
    np.testing.assert_allclose(windowed, direct, rtol=1e-5)
    assert not np.allclose(windowed, full)


@pytest.mark.parametrize("model", ["tiny_esm", "antiberty_lm"])
def test_variant_token_lands_at_its_position(model, request, sequence):
    lm = request.getfixturevalue(model)
    variant = parse_variant("p.Ser13Trp")
    wild, mutant = lm.encode(sequence)[0], lm.encode(variant.apply(sequence))[0]
    changed = torch.nonzero(wild != mutant).flatten().tolist()
    assert changed == [variant.position]  # token 0 is the start token, so token k is residue k
    assert int(mutant[variant.position]) == lm.token_ids["W"]
    assert int(wild[variant.position]) == lm.token_ids[sequence[12]] == lm.token_ids["S"]
