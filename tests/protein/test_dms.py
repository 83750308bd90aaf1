"""Bring-your-own assay: ProteinGym layout, multi-mutants summed, wild types checked."""

import numpy as np
import pandas as pd
import pytest

from featvis.protein.agreement import importance_vs_sensitivity, spearman, verdict
from featvis.protein.dms import model_scores, read_assay
from featvis.protein.report import AttentionParams, compute_protein, render_protein
from featvis.protein.scan import AA_INDEX
from featvis.protein.sequences import SequenceError
from featvis.protein.table import read_table

SEQ = "MKTAYIAKQRQISFVKSHFSRQ"


def write_assay(path, rows):
    pd.DataFrame(rows, columns=["mutant", "DMS_score"]).to_csv(path, index=False)
    return path


def test_multi_mutants_are_the_sum_of_their_parts(tmp_path):
    scan = np.random.default_rng(0).normal(size=(len(SEQ), 20))
    assay = read_assay(write_assay(tmp_path / "a.csv", [("K2A", 1.0), ("K2A:T3W", 0.5)]), SEQ)
    scores = model_scores(assay, scan)
    assert scores[0] == pytest.approx(scan[1, AA_INDEX["A"]])
    assert scores[1] == pytest.approx(scan[1, AA_INDEX["A"]] + scan[2, AA_INDEX["W"]])


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("A2K", 1.0)], r"line 2: variant A2K: the sequence has K \(Lys\) at position 2"),
        ([("K2A", 1.0), ("K2A:M3W", 1.0)], r"line 3: variant M3W: the sequence has T"),
        ([("K99A", 1.0)], "position 99 is out of range"),
    ],
)
def test_wild_type_mismatch_names_the_line(tmp_path, rows, message):
    with pytest.raises(SequenceError, match=message):
        read_assay(write_assay(tmp_path / "a.csv", rows), SEQ)


def test_missing_columns_and_file(tmp_path):
    (tmp_path / "b.csv").write_text("variant,score\nK2A,1\n")
    with pytest.raises(SequenceError, match=r"lacks column\(s\) \['mutant', 'DMS_score'\]"):
        read_assay(tmp_path / "b.csv", SEQ)
    with pytest.raises(SequenceError, match="not found"):
        read_assay(tmp_path / "none.csv", SEQ)


def test_verdicts_in_plain_words():
    assert verdict(0.8) == "agree well" and verdict(0.0) == "do not agree"
    assert verdict(-0.6).startswith("disagree") and "constant" in verdict(float("nan"))
    x = np.arange(10.0)
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert importance_vs_sensitivity(x, np.ones(10)).verdict.startswith("cannot")


def test_an_assay_made_from_a_known_function_agrees_perfectly(tiny_esm, tmp_path, monkeypatch):
    """DMS scores generated as a monotone function of the model's own scan: Spearman must be +1."""
    (tmp_path / "t.tsv").write_text(f"id\tsequence\tvariants\tdms\nx\t{SEQ}\tK2A\tassay.csv\n")
    probe = read_table(tmp_path / "t.tsv", base=tmp_path)[0]
    params = AttentionParams(scan="wildtype", logo_window=2)
    arrays, scores = compute_protein(tiny_esm, probe, params)
    scan = arrays["scan"]
    mutants = [f"{wt}{i + 1}{aa}" for i, wt in enumerate(SEQ) for aa in "ADKW" if aa != wt]
    mutants += ["K2A:T3W", "Y5D:S13P"]
    fitness = [np.tanh(0.3 * sum(scan[int(m[1:-1]) - 1, AA_INDEX[m[-1]]] for m in mut.split(":"))) for mut in mutants]
    write_assay(tmp_path / "assay.csv", list(zip(mutants, fitness, strict=True)))
    monkeypatch.chdir(tmp_path)  # the table's relative paths are read from the working directory
    (entry,) = read_table("t.tsv")
    render_protein(entry, arrays, scores, params, tmp_path / "report", "random:esm2_t6_8M_UR50D", "note")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "agree well (Spearman +1.00 over" in page
    assert "2 multi-mutants are scored as the sum" in page
    assert (tmp_path / "report" / "assay.png").stat().st_size > 0
