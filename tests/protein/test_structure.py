import json
import re

import numpy as np
import pytest

from featvis.protein.structure import (
    StructureError,
    align,
    ideal_helix,
    match_residues,
    read_residues,
    write_bfactors,
    write_ca_pdb,
)
from featvis.protein.viewer import viewer_html

SEQ = "MKTAYIAKQRQISFVKSHFSRQ"


@pytest.fixture
def helix_pdb(tmp_path):
    path = tmp_path / "helix.pdb"
    write_ca_pdb(path, SEQ, ideal_helix(len(SEQ)), first=10)
    return path


def test_written_trace_parses_back(helix_pdb):
    residues = read_residues(helix_pdb)
    assert "".join(r.letter for r in residues) == SEQ
    assert residues[0].number == 10
    np.testing.assert_allclose([r.ca for r in residues], ideal_helix(len(SEQ)), atol=1e-3)
    steps = np.linalg.norm(np.diff(ideal_helix(len(SEQ)), axis=0), axis=1)
    np.testing.assert_allclose(steps, 3.8, atol=0.05)  # the C-alpha spacing of a real helix


def test_missing_residues_are_aligned_around(tmp_path):
    path = tmp_path / "gap.pdb"
    kept = [i for i in range(len(SEQ)) if i not in (5, 6, 7)]
    write_ca_pdb(path, "".join(SEQ[i] for i in kept), ideal_helix(len(kept)))
    assert match_residues(read_residues(path), SEQ) == kept


def test_mismatching_structure_reports_where(tmp_path):
    path = tmp_path / "mut.pdb"
    write_ca_pdb(path, SEQ[:4] + "W" + SEQ[5:], ideal_helix(len(SEQ)))
    with pytest.raises(StructureError, match=r"A:TRP5 vs sequence position 5 TYR \(Y\)"):
        match_residues(read_residues(path), SEQ)


def test_extra_structure_residue_is_reported(tmp_path):
    path = tmp_path / "extra.pdb"
    write_ca_pdb(path, SEQ + "WWW", ideal_helix(len(SEQ) + 3))
    with pytest.raises(StructureError, match="no counterpart in the sequence"):
        match_residues(read_residues(path), SEQ)


def test_alignment_is_optimal_on_a_known_case():
    assert align("ACGT", "AGT") == [(0, 0), (1, None), (2, 1), (3, 2)]


def test_bfactors_written_per_residue(helix_pdb, tmp_path):
    residues = read_residues(helix_pdb)
    mapping = match_residues(residues, SEQ)
    values = np.arange(len(SEQ)) * 0.5
    out = tmp_path / "scored.pdb"
    write_bfactors(helix_pdb, out, residues, mapping, values)
    lines = [line for line in out.read_text().splitlines() if line.startswith("ATOM")]
    assert [float(line[60:66]) for line in lines] == pytest.approx(values.tolist())
    assert [line[:60] for line in lines] == [
        line[:60] for line in helix_pdb.read_text().splitlines() if line.startswith("ATOM")
    ]


def test_missing_pdb_file(tmp_path):
    with pytest.raises(StructureError, match="not found"):
        read_residues(tmp_path / "none.pdb")


def test_viewer_is_self_contained(helix_pdb):
    residues = read_residues(helix_pdb)
    mapping = match_residues(residues, SEQ)
    values = np.linspace(0, 2, len(SEQ))
    page = viewer_html(
        residues=residues,
        mapping=mapping,
        tracks={"wild type": (values, False, "n")},
        variant_index=4,
        variant_label="Y5A",
        title="t",
        reading="r",
    )
    assert not re.search(r"<script[^>]+src=", page)
    assert "http://" not in page and "https://" not in page
    data = json.loads(re.search(r"const DATA = (\{.*?\});\n", page).group(1))
    assert data["variant"] == 4 and len(data["residues"]) == len(SEQ)
    assert data["tracks"]["wild type"]["values"][-1] == pytest.approx(2.0)
