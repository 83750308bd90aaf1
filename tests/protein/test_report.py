import dataclasses
import hashlib
import re

import numpy as np
import pytest

from featvis.protein.report import AttentionParams, compute_protein, ranked_changes, render_protein
from featvis.protein.sequences import SequenceError
from featvis.protein.table import read_table


@pytest.fixture
def table(tmp_path, sequence):
    path = tmp_path / "t.tsv"
    header = "# comment\nid\tsequence\tvariants\tpdb\tdomains\n"
    path.write_text(header + f"x\t{sequence[:40]}\tK2A;p.Thr3Trp\t\tA:1-10\n")
    return path


def test_table_rows_are_parsed(table, sequence):
    (entry,) = read_table(table)
    assert entry.sequence == sequence[:40]
    assert [v.label for v in entry.variants] == ["K2A", "T3W"]
    assert entry.domains[0].name == "A" and entry.pdb is None


@pytest.mark.parametrize(
    "row, message",
    [
        ("x\tACDXF\tC2A\t\t", "line 2 \\(x\\).*'X' at position 4"),
        ("x\tACDEF\tD2A\t\t", "line 2 \\(x\\).*has C \\(Cys\\) at position 2"),
        ("x\tACDEF\tC20A\t\t", "position 20 is out of range"),
        ("x y\tACDEF\tC2A\t\t", "id 'x y'"),
        ("x\tACDEF\tC2A\tmodel.xyz\t", "pdb column"),
    ],
)
def test_bad_rows_name_the_row(tmp_path, row, message):
    path = tmp_path / "t.tsv"
    path.write_text("id\tsequence\tvariants\tpdb\tdomains\n" + row + "\n")
    with pytest.raises(SequenceError, match=message):
        read_table(path)


def test_ranked_changes_orders_by_absolute_change(table):
    (entry,) = read_table(table)
    wild = np.ones(40)
    mutant = np.ones(40)
    mutant[[4, 7, 30]] = [1.5, 0.2, 1.1]
    ranked = ranked_changes(entry, wild, mutant, 3)
    assert list(ranked.position) == [8, 5, 31]
    assert list(ranked.domain) == ["A", "A", ""]


def test_rendering_is_byte_reproducible(tiny_esm, table, tmp_path):
    (entry,) = read_table(table)
    entry = dataclasses.replace(entry, variants=entry.variants[:1])
    params = AttentionParams(logo_window=3)
    arrays, scores = compute_protein(tiny_esm, entry, params)
    assert list(scores.position) == [2]
    digests = []
    for name in ("a", "b"):
        out = tmp_path / name
        render_protein(entry, arrays, scores, params, out, "m", "note")
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())})
    assert digests[0] == digests[1]
    assert "K2A_logo.png" in digests[0]
    # Clinician-facing words only: no model internals on the page.
    text = re.sub(r"<[^>]+>", " ", (tmp_path / "a" / "index.html").read_text()).lower()
    for word in ("attention", "softmax", "head"):
        assert word not in text
    assert "importance score" in text


def test_bad_params():
    with pytest.raises(ValueError, match="pair_map"):
        AttentionParams(pair_map="heads")


def test_contacts_need_a_contact_predictor(tiny_esm, table, monkeypatch):
    (entry,) = read_table(table)
    monkeypatch.setattr(tiny_esm, "contact_weight", None)
    with pytest.raises(ValueError, match="contact predictor"):
        compute_protein(tiny_esm, entry, AttentionParams(pair_map="contacts"))


def test_every_pair_map_draws(tiny_esm, sequence, tmp_path):
    from featvis.core.figures import save_figure
    from featvis.protein import figures
    from featvis.protein.attention import MAP_NAMES, summarize_window
    from featvis.protein.sequences import parse_variant

    variant = parse_variant("K2A")
    wild, mutant = (summarize_window(tiny_esm, s) for s in (sequence[:30], variant.apply(sequence[:30])))
    for pair_map in MAP_NAMES:
        fig = figures.pair_maps(getattr(wild, pair_map), getattr(mutant, pair_map), variant, "t", "w")
        save_figure(fig, tmp_path / f"{pair_map}.png", dpi=40)
        assert (tmp_path / f"{pair_map}.png").stat().st_size > 1000


def test_index_table_uses_reader_words_and_prunes_stale_folders(tmp_path):
    import pandas as pd

    from featvis.protein.summary_table import prune_stale, write_index

    table = pd.DataFrame({"protein": ["x"], "variant": ["K2A"], "wild_type": ["K"], "masked_marginal": [-1.0]})
    write_index(table, tmp_path / "s.tsv", tmp_path / "index.html", {"x": "x/report/index.html"})
    page = (tmp_path / "index.html").read_text()
    assert "variant effect score (masked)" in page and "wild-type residue" in page
    assert "masked_marginal" not in page and "wild_type" not in page
    assert "masked_marginal" in (tmp_path / "s.tsv").read_text()  # machine names stay in the TSV
    for name in ("x", "old"):
        (tmp_path / name / "report").mkdir(parents=True)
    assert prune_stale(tmp_path, ["x"]) == ["old"]
    assert (tmp_path / "x").is_dir() and not (tmp_path / "old").exists()


def test_a_prominent_note_for_models_that_should_not_be_trusted_here():
    from featvis.protein.page import model_warning, page

    assert "antibody sequences only" in model_warning("antiberty")
    assert "randomly initialised" in model_warning("random:esm2_t6_8M_UR50D")
    assert model_warning("esm2_t33_650M_UR50D") == ""
    html = page("t", "", [("a", "A", "<p>x</p>")], "antiberty")
    assert '<p class="warning">' in html and html.index("warning") < html.index('<nav class="toc">')
    assert '<a href="#glossary">' in html and 'href="report.css"' in html
