"""What the substitution scan checks at start, without importing torch (the workflow's parse runs it)."""

from __future__ import annotations

SCAN_METHODS = ("masked", "wildtype")


class ScanBudgetError(ValueError):
    """A protein too long for a masked scan within the configured budget."""


def check_scan_budget(protein: str, length: int, method: str, budget: int) -> None:
    """Stop before a masked scan of more residues than ``budget`` (one model pass per residue)."""
    if method == "masked" and length > budget:
        raise ScanBudgetError(
            f"protein {protein!r} has {length} residues, more than the masked scan budget of {budget} "
            f"(attention.scan_budget; a masked scan runs the model once per residue). Set attention.scan: wildtype "
            f"(one pass, less accurate) or raise attention.scan_budget"
        )
