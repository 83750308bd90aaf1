import json
import re
from pathlib import Path

import numpy as np
import pytest

from featvis.protein.agreement import contact_precision
from featvis.protein.structure import (
    StructureError,
    align,
    ideal_helix,
    match_residues,
    read_residues,
    write_bfactors,
    write_ca_pdb,
)

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
    alignment = match_residues(read_residues(path), SEQ)
    assert alignment.mapping == kept and alignment.identity == 1.0
    assert (alignment.first, alignment.last) == (1, len(SEQ))


def test_one_changed_residue_is_reported_above_the_threshold(tmp_path):
    path = tmp_path / "mut.pdb"
    write_ca_pdb(path, SEQ[:4] + "W" + SEQ[5:], ideal_helix(len(SEQ)))
    alignment = match_residues(read_residues(path), SEQ, min_identity=0.9)
    assert alignment.identity == pytest.approx(21 / 22)
    assert "A:TRP5 vs sequence position 5 TYR (Y)" in alignment.describe(read_residues(path))


def test_a_structure_of_another_protein_stops_with_identity_and_range(tmp_path):
    path = tmp_path / "other.pdb"
    other = "GGGGGWWWWWPPPPPHHHHHCC"
    write_ca_pdb(path, other, ideal_helix(len(other)))
    with pytest.raises(StructureError, match=r"positions 1-22, identity 4\.5%.*at least 90%.*min_identity"):
        match_residues(read_residues(path), SEQ, min_identity=0.9, source="structure other.pdb")


def test_extra_structure_residues_lower_identity(tmp_path):
    path = tmp_path / "extra.pdb"
    write_ca_pdb(path, SEQ + "WWW", ideal_helix(len(SEQ) + 3))
    alignment = match_residues(read_residues(path), SEQ, min_identity=0.8)
    assert alignment.mapping[-3:] == [None, None, None]
    assert "no counterpart in the sequence" in alignment.describe(read_residues(path))
    with pytest.raises(StructureError):
        match_residues(read_residues(path), SEQ, min_identity=0.9)


def test_alignment_is_optimal_on_a_known_case():
    assert align("ACGT", "AGT") == [(0, 0), (1, None), (2, 1), (3, 2)]


def test_bfactors_written_per_residue(helix_pdb, tmp_path):
    residues = read_residues(helix_pdb)
    mapping = match_residues(residues, SEQ).mapping
    values = np.arange(len(SEQ)) * 0.5
    out = tmp_path / "scored.pdb"
    write_bfactors(helix_pdb, out, residues, mapping, values)
    lines = [line for line in out.read_text().splitlines() if line.startswith("ATOM")]
    assert [float(line[60:66]) for line in lines] == pytest.approx(values.tolist())
    coords = [[float(line[k : k + 8]) for k in (30, 38, 46)] for line in lines]
    np.testing.assert_allclose(coords, ideal_helix(len(SEQ)), atol=1e-3)


def test_missing_structure_file(tmp_path):
    with pytest.raises(StructureError, match="not found"):
        read_residues(tmp_path / "none.pdb")


# ---------------------------------------------------------------- real entries (Debian pymol-data)

HIV = Path("/usr/share/pymol/data/tut/1hpv.pdb")


def test_real_pdb_chains_and_a_missing_chain():
    assert HIV.is_file(), "apt-get install -y pymol-data"
    a, b = read_residues(HIV, "A"), read_residues(HIV, "B")
    assert len(a) == len(b) == 99 and a[0].label == "A:PRO1" and b[0].chain == "B"
    assert "".join(r.letter for r in a).startswith("PQITLWQRPL")  # HIV-1 protease
    assert all(r.cb is not None for r in a)
    with pytest.raises(StructureError, match="no chain 'C'; its chains are 'A', 'B'"):
        read_residues(HIV, "C")


def test_mmcif_reads_like_the_pdb(tmp_path):
    """An mmCIF file (the AlphaFold format) of the same entry gives the same residues."""
    import gemmi

    structure = gemmi.read_pdb(str(HIV), max_line_length=72)
    structure.setup_entities()
    cif = tmp_path / "1hpv.cif"
    structure.make_mmcif_document().write_file(str(cif))
    assert read_residues(cif, "A") == read_residues(HIV, "A")


def test_contact_precision_known_answer():
    """An ideal helix: no C-beta pairs 24 apart are within 8 A, while a folded pair is."""
    length = 40
    coords = ideal_helix(length)
    coords[35] = coords[5] + [0, 0, 4.0]  # fold residue 36 back onto residue 6
    pair_map = np.zeros((length, length))
    pair_map[5, 35] = 1.0  # the model ranks the real contact first
    check = contact_precision(pair_map, coords, top=1)
    near = sum(np.linalg.norm(coords[i] - coords[j]) < 8 for i in range(length) for j in range(i + 24, length))
    assert check.precision == 1.0 and check.top == 1 and check.contacts == near >= 1
    assert check.pairs == sum(range(1, length - 24 + 1))
    pair_map[5, 35], pair_map[0, 30] = 0.0, 1.0  # ... now a non-contact first
    assert contact_precision(pair_map, coords, top=1).precision == 0.0
    assert contact_precision(pair_map, coords).top == length
    missing = coords.copy()
    missing[:] = np.nan
    assert contact_precision(pair_map, missing) is None


# Interleukin-2 (PDB 1SP2 via Debian's pymol-data): its chain has a blank name and residues 79-82 unresolved.
IL2_PDB = Path("/usr/share/pymol/test/dat/il2.pdb")
IL2 = ("APTSSSTKKTQLQLEHLLLDLQMILNGINNYKNPKLTRMLTFKFYMPKKATELKHLQCLEEELKPLEEVLNLAQSKNFHLRPRDLISNINVIVLELKGSETTFMCEY"
       "ADETATIVEFLNRWITFCQSIISTLT")  # mature human IL-2, 133 residues (UniProt P60568 21-153)


def test_a_blank_chain_with_a_missing_loop_aligns_and_the_report_builds_without_the_viewer(
    tiny_esm, tmp_path, monkeypatch
):
    from featvis.protein import viewer
    from featvis.protein.checks import check_entries, viewer_note
    from featvis.protein.report import AttentionParams, compute_protein, render_protein
    from featvis.protein.table import read_table

    # as in a copy whose vendored viewer was removed
    monkeypatch.setattr(viewer, "LIBRARY", tmp_path / "absent" / "3Dmol-min.js")
    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\tpdb\nil2\t{IL2}\tK35A\t{IL2_PDB}\n")
    entries = read_table(table)
    check_entries(entries, "wildtype", 3600, 0.9)  # passes at start: the viewer is no longer required
    assert "not installed" in viewer_note(entries) and "pip install -e ." in viewer_note(entries)
    params = AttentionParams(scan="wildtype", logo_window=2, top_residues=3)
    arrays, scores = compute_protein(tiny_esm, entries[0], params)
    page = render_protein(entries[0], arrays, scores, params, tmp_path / "report", "random", "note").read_text()
    # 126 residues placed, the gap left open (no residue of the structure lands on 79-82)
    assert "126 of 126 structure residues" in page and "placed on sequence positions 4-133, identity 100.0%" in page
    assert "K35A_structure.png" in page and "3Dmol.js, which is not installed" in page
    assert not (tmp_path / "report" / "K35A_structure.html").exists()
    pdb = (tmp_path / "report" / "structure_wildtype.pdb").read_text().splitlines()
    resolved = {int(line[22:26]) for line in pdb if line.startswith("ATOM")}
    assert {79, 80, 81, 82}.isdisjoint(resolved) and {78, 83} <= resolved
    # the viewer page (when installed) keys the blank chain as 3Dmol reads PDB column 22: a space
    from featvis.protein.structure import match_residues, read_residues

    residues = read_residues(IL2_PDB)
    mapping = match_residues(residues, IL2).mapping
    text = viewer.viewer_html("", residues, mapping, {"t": (np.arange(133.0), False, "")}, 34, "K35A", [], "t", "",
                              "", library="x.js")  # fmt: skip
    data = json.loads(re.search(r"const DATA = (.*);\n", text).group(1))
    assert data["chain"] == " " and data["variant"] == {"resi": 35, "label": "K35A"}
    assert data["tracks"]["t"]["values"][" :35"] == 34.0 and " :80" not in data["tracks"]["t"]["values"]
