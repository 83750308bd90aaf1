"""Checks of the model on one protein: does importance agree with the model's own sensitivity,
and do its pair maps find the structure's contacts?

Attention is not always a faithful explanation (Jain & Wallace 2019), so the report sets the
attention-derived importance against the scan's mutational sensitivity (what the model says
matters when residues change) and says in plain words how well they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

# Rank correlation bands, in the words the page uses.
_BANDS = ((0.5, "agree well"), (0.3, "agree moderately"), (0.1, "agree weakly"), (-0.1, "do not agree"))


@dataclass(frozen=True)
class Agreement:
    rho: float
    n: int
    verdict: str

    @property
    def sentence(self) -> str:
        return (
            f"Importance and sensitivity {self.verdict} on this protein (Spearman rank correlation "
            f"{self.rho:+.2f} over {self.n} residues; +1 is perfect agreement, 0 none)."
        )


def verdict(rho: float) -> str:
    """Plain words for a rank correlation."""
    if not np.isfinite(rho):
        return "cannot be compared (one of them is constant)"
    for low, words in _BANDS:
        if rho >= low:
            return words
    return "disagree (they rank residues in opposite order)"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation over the entries finite in both (NaN when fewer than 3 or constant)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3 or np.ptp(a[keep]) == 0 or np.ptp(b[keep]) == 0:
        return float("nan")
    return float(spearmanr(a[keep], b[keep]).statistic)


def importance_vs_sensitivity(importance: np.ndarray, sensitivity: np.ndarray) -> Agreement:
    rho = spearman(importance, sensitivity)
    return Agreement(rho, int(np.isfinite(importance).sum()), verdict(rho))


@dataclass(frozen=True)
class ContactCheck:
    precision: float  # fraction of the top pairs that are contacts in the structure
    top: int  # pairs evaluated (L, or fewer when the structure covers less)
    contacts: int  # long-range contacts in the structure
    pairs: int  # long-range pairs with both residues in the structure
    separation: int
    cutoff: float


def contact_precision(
    pair_map: np.ndarray, beta: np.ndarray, separation: int = 24, cutoff: float = 8.0, top: int | None = None
) -> ContactCheck | None:
    """Precision of the ``top`` (default L) highest-scoring pairs at least ``separation`` apart against
    contacts in the structure (C-beta, C-alpha for glycine, within ``cutoff`` angstroms).

    ``beta`` is (L, 3) with NaN rows for residues the structure lacks; only pairs with both
    residues in the structure are ranked. None when no such pair exists.
    """
    length = len(beta)
    i, j = np.triu_indices(length, k=separation)
    present = np.isfinite(beta).all(1)
    keep = present[i] & present[j] & np.isfinite(pair_map[i, j])
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return None
    dist = np.linalg.norm(beta[i] - beta[j], axis=1)
    order = np.argsort(-pair_map[i, j], kind="stable")[: min(top or length, len(i))]
    hits = dist[order] < cutoff
    return ContactCheck(float(hits.mean()), len(order), int((dist < cutoff).sum()), len(i), separation, cutoff)
