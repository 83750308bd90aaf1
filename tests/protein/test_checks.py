"""Start-time checks of the protein table: each bad input stops with a message naming the fix."""

from pathlib import Path

import pytest

from featvis.protein.checks import check_entries
from featvis.protein.structure import ideal_helix, write_ca_pdb
from featvis.protein.table import read_table

HIV = Path("/usr/share/pymol/data/tut/1hpv.pdb")
HIV_PR = "PQITLWQRPLVTIKIGGQLKEALLDTGADDTVLEEMSLPGRWKPKMIGGIGGFIKVRQYDQILIEICGHKAIGTVLVGPTPVNIIGRNLLTQIGCTLNF"


def entries(tmp_path, pdb="", dms="", sequence=HIV_PR):
    table = tmp_path / "t.tsv"
    table.write_text(f"id\tsequence\tvariants\tpdb\tdms\nhiv\t{sequence}\tD25N\t{pdb}\t{dms}\n")
    return read_table(table)


# What the start check's model inspection gives (featvis.protein.model_checks): ESM-2 8M's shape, a slow machine.
SLOW_MODEL = {"layers": 6, "dim": 320, "vocab": 33, "max_residues": 1022, "operations_per_second": 1e6}


def test_a_good_table_passes(tmp_path):
    (estimate,) = check_entries(entries(tmp_path, pdb=f"{HIV}:B"), "masked", 2000, 0.9, {**SLOW_MODEL,
                                "operations_per_second": 1e12})  # fmt: skip
    assert estimate.passes == 2 + 99 and estimate.seconds < 1


@pytest.mark.parametrize(
    "kwargs, options, message",
    [
        ({"pdb": f"{HIV}:C"}, ("masked", 2000, 0.9), r"protein 'hiv': .*1hpv.pdb has no chain 'C'; its chains are"),
        ({"pdb": "missing.pdb"}, ("masked", 2000, 0.9), "structure file not found: missing.pdb"),
        ({}, ("masked", 1, 0.9, SLOW_MODEL), "99 residues: its masked scan needs 99 model passes.*scan: wildtype"),
        ({"dms": "none.csv"}, ("masked", 2000, 0.9), "DMS assay not found"),
        ({}, ("fast", 2000, 0.9), "scan must be one of"),
    ],
)
def test_bad_inputs_stop_at_start(tmp_path, kwargs, options, message):
    with pytest.raises(ValueError, match=message):
        check_entries(entries(tmp_path, **kwargs), *options)


def test_a_structure_of_another_sequence_stops_below_the_threshold(tmp_path):
    other = tmp_path / "other.pdb"
    write_ca_pdb(other, HIV_PR[::-1], ideal_helix(len(HIV_PR)))
    with pytest.raises(ValueError, match=r"protein 'hiv': structure .*other.pdb does not match.*identity"):
        check_entries(entries(tmp_path, pdb=str(other)), "masked", 2000, 0.9)
    check_entries(entries(tmp_path, pdb=str(other)), "masked", 2000, 0.0)  # the threshold is the user's


def test_dms_wild_type_mismatch_at_start(tmp_path):
    assay = tmp_path / "a.csv"
    assay.write_text("mutant,DMS_score\nD25N,0.1\nA26T,0.3\n")  # position 26 is T
    with pytest.raises(ValueError, match=r"protein 'hiv': DMS assay .*a.csv line 3: variant A26T"):
        check_entries(entries(tmp_path, dms=str(assay)), "masked", 2000, 0.9)
