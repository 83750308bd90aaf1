"""The substitution scan: batching and tiling change nothing but speed; known answers for the summaries."""

import dataclasses

import numpy as np
import pytest

from featvis.protein.estimate import Architecture, estimate_work, pass_operations
from featvis.protein.report import AttentionParams, compute_protein
from featvis.protein.scan import (
    ScanBudgetError,
    log_ratios,
    masked_scan_log_probs,
    percentile,
    scan_table,
    scan_tiles,
    sensitivity,
    substitutions,
)
from featvis.protein.scan_checks import check_scan_budget
from featvis.protein.scoring import masked_log_probs
from featvis.protein.sequences import AMINO_ACIDS
from featvis.protein.table import read_table


def test_tiles_own_each_position_once_where_it_is_most_central():
    tiles = scan_tiles(100, 40, 20)
    owned = sorted(p for _, _, positions in tiles for p in positions)
    assert owned == list(range(100))
    for start, end, positions in tiles:
        assert all(start <= p < end for p in positions)
    assert [(s, e) for s, e, _ in tiles] == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert 30 in tiles[1][2] and 10 in tiles[0][2] and 90 in tiles[3][2]


def test_batched_scan_matches_one_pass_per_position(tiny_esm, sequence):
    seq = sequence[:30]
    batched = masked_scan_log_probs(tiny_esm, seq, batch_size=7)
    single = masked_log_probs(tiny_esm, seq, list(range(len(seq))), batch_size=1)
    np.testing.assert_allclose(batched, single, atol=2e-5)


def test_tiled_scan_reads_each_position_in_its_own_window(tiny_esm, sequence):
    seq = sequence[:60]
    tiled = masked_scan_log_probs(tiny_esm, seq, window=30, overlap=10, batch_size=8)
    for start, end, positions in scan_tiles(60, 30, 10):
        alone = masked_log_probs(tiny_esm, seq[start:end], [p - start for p in positions])
        np.testing.assert_allclose(tiled[positions], alone, atol=2e-5)


def test_scores_sensitivity_and_percentile_known_answers():
    seq = "AC"
    log_probs = np.full((2, 20), -3.0)
    log_probs[0, AMINO_ACIDS.index("A")] = -1.0  # position 1 strongly prefers its wild type
    log_probs[1, AMINO_ACIDS.index("C")] = -3.0  # position 2 indifferent
    scan = log_ratios(log_probs, seq)
    assert scan[0, AMINO_ACIDS.index("A")] == 0 and scan[1, AMINO_ACIDS.index("C")] == 0
    np.testing.assert_allclose(sensitivity(scan, seq), [2.0, 0.0])
    assert len(substitutions(scan, seq)) == 38
    assert percentile(scan, seq, -2.0) == pytest.approx(50.0)  # the 19 at position 1 score -2
    assert percentile(scan, seq, 0.0) == pytest.approx(100.0)
    table = scan_table(scan, seq)
    assert len(table) == 38 and set(table.columns) == {"position", "wild_type", "mutant", "score"}
    assert not ((table.position == 1) & (table.mutant == "A")).any()


ESM2_8M = Architecture(layers=6, dim=320, vocab=33, max_residues=1022)


def test_work_estimate_counts_passes_and_seconds():
    # 1,179 residues: two windows of 1,022 per sequence; the masked scan is one pass per residue
    work = estimate_work("big", 1179, 2, ESM2_8M, operations_per_second=1e9, scan="masked")
    assert (work.importance_passes, work.scan_passes) == (3 * 2, 1179)
    assert work.scan_seconds == pytest.approx(1179 * pass_operations(ESM2_8M, 1024) / 1e9)
    one = pass_operations(ESM2_8M, 1024)
    assert one == 6 * (24 * 1024 * 320**2 + 4 * 1024**2 * 320) + 2 * 1024 * 320 * 353  # known answer
    wild = estimate_work("big", 1179, 2, ESM2_8M, 1e9, scan="wildtype", logo_window=7)
    assert wild.scan_passes == 2 * 16 and wild.seconds < work.seconds / 10
    assert "about 1185 model passes" in work.sentence()


def test_scan_budget_is_work_and_suggests_wildtype():
    small = estimate_work("p", 500, 1, ESM2_8M, 1e9, scan="masked")
    check_scan_budget(small, small.scan_seconds + 1)
    big = estimate_work("big", 2000, 1, ESM2_8M, 1e9, scan="masked")
    # the same residues with a model 20x slower (more layers, wider) no longer fit the same budget
    check_scan_budget(big, big.scan_seconds + 1)
    slow = estimate_work("big", 2000, 1, ESM2_8M, 1e9 / 20, scan="masked")
    with pytest.raises(ScanBudgetError, match=r"'big' has 2000 residues: its masked scan needs 2000 model passes, "
                                              r"about .* h .*scan: wildtype.*scan_budget"):  # fmt: skip
        check_scan_budget(slow, big.scan_seconds + 1)
    check_scan_budget(estimate_work("big", 2000, 1, ESM2_8M, 1e9 / 20, scan="wildtype"), 1)  # no budget


def test_masked_and_wildtype_scans_in_compute(tiny_esm, sequence, tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\nx\t{sequence[:40]}\tK2A\n")
    (entry,) = read_table(table)
    masked, scores = compute_protein(tiny_esm, entry, AttentionParams(logo_window=2))
    assert masked["scan"].shape == (40, 20)
    k2a = masked["scan"][1, AMINO_ACIDS.index("A")]
    assert scores.masked_marginal[0] == pytest.approx(k2a, abs=1e-4)  # one number, one meaning
    assert 0 < scores.percentile[0] <= 100
    wild, _ = compute_protein(tiny_esm, dataclasses.replace(entry), AttentionParams(scan="wildtype", logo_window=2))
    np.testing.assert_allclose(wild["scan"], log_ratios(wild["wildtype__log_probs"], entry.sequence), atol=1e-6)


def test_a_synonymous_variant_scores_zero_and_is_labelled(tiny_esm, sequence, tmp_path):
    from featvis.protein.report import render_protein

    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\nx\t{sequence[:30]}\tp.Lys2=;K2A\n")
    (entry,) = read_table(table)
    params = AttentionParams(logo_window=2, top_residues=3)
    arrays, scores = compute_protein(tiny_esm, entry, params)
    same = scores[scores.variant == "K2="].iloc[0]
    assert same.masked_marginal == 0 and same.wildtype_marginal == 0 and same.effect == "synonymous"
    assert scores[scores.variant == "K2A"].iloc[0].effect == "missense"
    page = render_protein(entry, arrays, scores, params, tmp_path / "report", "random", "note").read_text()
    assert "p.Lys2= (K2=), synonymous: no change of amino acid, score 0" in page
    assert (tmp_path / "report" / "K2=.pdf").read_bytes().startswith(b"%PDF")
