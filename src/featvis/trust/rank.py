"""Spearman rank correlation between rows of two matrices, batched in torch.

Each row is one image's channel vector at one layer; the correlation of two rows says
whether the same channels are high and low in both, whatever their scales. Ties get
the mean of the ranks they span (as ``scipy.stats.spearmanr`` does), which matters
after a ReLU, where many channels are exactly zero.
"""

from __future__ import annotations

import torch


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..C along the last axis of an ``(n, C)`` tensor, ties given their mean rank (float64)."""
    if values.ndim != 2:
        raise ValueError(f"expected an (n, channels) tensor to rank, got shape {tuple(values.shape)}")
    rows, width = values.shape
    ordered, order = values.sort(dim=1, stable=True)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    offsets = torch.arange(rows, device=values.device)[:, None] * width
    group = (starts.cumsum(1) - 1 + offsets).flatten()  # a tie group's id, unique across rows
    positions = torch.arange(1, width + 1, dtype=torch.float64, device=values.device).repeat(rows)
    sums = torch.zeros(rows * width, dtype=torch.float64, device=values.device).index_add_(0, group, positions)
    counts = torch.zeros_like(sums).index_add_(0, group, torch.ones_like(positions))
    mean_rank = (sums[group] / counts[group]).reshape(rows, width)
    return torch.empty_like(mean_rank).scatter_(1, order, mean_rank)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(n, C)`` and ``(m, C)`` -> ``(n, m)``: Spearman's rho of every row of ``a`` with every row of ``b``.

    A row whose values are all equal has no ranking; its correlations are 0 (no evidence
    either way), where scipy would give NaN. Non-finite values are an error.
    """
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"cannot correlate vectors of {a.shape[-1]} and {b.shape[-1]} channels")
    for name, x in (("first", a), ("second", b)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"the {name} set of vectors holds NaN or infinite values: no ranking")
    return _unit_rows(average_ranks(a)) @ _unit_rows(average_ranks(b)).T


def _unit_rows(ranks: torch.Tensor) -> torch.Tensor:
    """Centred rows scaled to length 1, so that a dot product is Pearson's r; constant rows stay 0."""
    centred = ranks - ranks.mean(dim=1, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True)
    return torch.where(norm > 0, centred / norm.clamp_min(1e-300), torch.zeros_like(centred))
