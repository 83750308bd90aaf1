"""Start-time checks of the protein table: every structure, assay and scan budget is checked
before any model runs, so a bad row stops the workflow at once with one line."""

from __future__ import annotations

from featvis.protein.dms import read_assay
from featvis.protein.scan_checks import SCAN_METHODS, check_scan_budget
from featvis.protein.structure import match_residues, read_residues
from featvis.protein.table import ProteinEntry
from featvis.protein.viewer import viewer_library


def check_entries(entries: list[ProteinEntry], scan: str, scan_budget: int, min_identity: float) -> None:
    """Raise a ``ValueError`` naming the protein and the fix for the first problem found."""
    if scan not in SCAN_METHODS:
        raise ValueError(f"attention.scan must be one of {SCAN_METHODS}, not {scan!r}")
    for entry in entries:
        check_scan_budget(entry.id, len(entry.sequence), scan, scan_budget)
        try:
            if entry.pdb:
                residues = read_residues(entry.pdb, entry.chain)
                match_residues(residues, entry.sequence, min_identity, source=f"structure {entry.pdb}")
            if entry.dms:
                read_assay(entry.dms, entry.sequence)
        except ValueError as err:
            raise ValueError(f"protein {entry.id!r}: {err}") from None
    if any(entry.pdb for entry in entries):
        viewer_library()
