"""What the substitution scan checks at start, without importing torch (the workflow's parse runs it)."""

from __future__ import annotations

from featvis.core.progress import duration
from featvis.protein.estimate import WorkEstimate

SCAN_METHODS = ("masked", "wildtype")


class ScanBudgetError(ValueError):
    """A protein whose masked scan would take longer than the configured budget."""


def check_scan_budget(estimate: WorkEstimate, budget_seconds: float) -> None:
    """Stop before a masked scan estimated to take longer than ``budget_seconds`` on this machine."""
    if estimate.scan == "masked" and estimate.scan_seconds > budget_seconds:
        raise ScanBudgetError(
            f"protein {estimate.protein!r} has {estimate.residues} residues: its masked scan needs "
            f"{estimate.scan_passes} model passes, about {duration(estimate.scan_seconds)} here, more than the "
            f"scan budget of {duration(budget_seconds)} (attention.scan_budget, in seconds). Set attention.scan: "
            f"wildtype (one pass, less accurate) or raise attention.scan_budget"
        )
