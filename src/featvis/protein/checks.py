"""Start-time checks of the protein table: every structure, assay and scan budget is checked
before any model runs, so a bad row stops the workflow at once with one line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featvis.protein.dms import read_assay
from featvis.protein.estimate import Architecture, WorkEstimate, estimate_work
from featvis.protein.scan_checks import SCAN_METHODS, check_scan_budget
from featvis.protein.structure import match_residues, read_residues
from featvis.protein.table import ProteinEntry
from featvis.protein.viewer import INSTALL, viewer_installed


def check_entries(
    entries: list[ProteinEntry],
    scan: str,
    scan_budget: float,
    min_identity: float,
    model: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
) -> list[WorkEstimate]:
    """Raise a ``ValueError`` naming the protein and the fix for the first problem found; return each
    protein's work estimate when the inspected ``model`` (``featvis.protein.model_checks``) is given."""
    if scan not in SCAN_METHODS:
        raise ValueError(f"attention.scan must be one of {SCAN_METHODS}, not {scan!r}")
    options = options or {}
    estimates = []
    for entry in entries:
        if model is not None:
            estimate = estimate_work(
                entry.id, len(entry.sequence), len(entry.variants),
                Architecture(model["layers"], model["dim"], model["vocab"], model["max_residues"]),
                model["operations_per_second"], scan, options.get("tile_window"), options.get("tile_overlap", 256),
                options.get("logo_window", 7),
            )  # fmt: skip
            check_scan_budget(estimate, scan_budget)
            estimates.append(estimate)
        try:
            if entry.pdb:
                residues = read_residues(entry.pdb, entry.chain)
                match_residues(residues, entry.sequence, min_identity, source=f"structure {entry.pdb}")
            if entry.dms:
                read_assay(entry.dms, entry.sequence)
        except ValueError as err:
            raise ValueError(f"protein {entry.id!r}: {err}") from None
    return estimates


def viewer_note(entries: list[ProteinEntry]) -> str | None:
    """What to say at start when a protein has a structure and the 3D viewer is missing (reports still build)."""
    if any(entry.pdb for entry in entries) and not viewer_installed():
        return (f"the 3D viewer (3Dmol.js) is not installed: structures are shown as still pictures; add it with "
                f"`{INSTALL}`")  # fmt: skip
    return None
