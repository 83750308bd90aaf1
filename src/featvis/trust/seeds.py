"""Seed stability: do renders of one unit from different random starts look alike to the network?

A render starts from random noise. If renders of the same unit from several seeds end up
processed alike (their pooled channel vectors point the same way at each probe layer), the
picture is a property of the unit, not of the start. The yardstick is the unit's own top-K
natural images: how alike are *they* at the same layer? Both are mean cosine similarities over
pairs (never an image with itself), of vectors standardised as in the path check (each channel
minus its mean over the check's natural images, over its spread there), so that a channel large
on every image does not make everything look alike. Without natural images (no features stage)
the raw pooled vectors are compared and there is no natural yardstick.

Renders share a look of their own (every render stands far from the natural images, in the same
direction), so seeds of one unit are alike partly because they are renders. The second yardstick
says how much: the same similarity between this unit's renders and the renders of the job's
other units. Seed stability means the unit's own seeds are clearly more alike than that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch

from featvis.trust.path import standardise


@dataclass
class SeedLayer:
    layer: str
    seeds_cosine: float  # mean cosine similarity of the renders from different seeds
    top_cosine: float | None  # the same among the unit's top-K natural images; None without them
    others_cosine: float | None  # mean cosine of this unit's renders with other units' renders; None without


@dataclass
class SeedStability:
    seeds: list[int]
    standardised: bool  # whether vectors were standardised over natural images
    layers: list[SeedLayer]
    seeds_mean: float | None  # over the probe layers before the unit's layer
    top_mean: float | None
    others_mean: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def mean_pair_cosine(vectors: torch.Tensor) -> float:
    """Mean cosine similarity over every pair of rows (i != j); NaN for fewer than two rows.
    A zero row has cosine 0 with everything."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    unit = vectors.double() / vectors.double().norm(dim=1, keepdim=True).clamp_min(1e-300)
    sims = unit @ unit.T
    return float((sims.sum() - sims.diagonal().sum()) / (n * (n - 1)))


def mean_cross_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity of every row of ``a`` with every row of ``b``."""
    a, b = (v.double() / v.double().norm(dim=1, keepdim=True).clamp_min(1e-300) for v in (a, b))
    return float((a @ b.T).mean())


def seed_stability(layers: Sequence[str], renders: Mapping[str, torch.Tensor], seeds: Sequence[int],
                   top: Mapping[str, torch.Tensor] | None = None,
                   reference: Mapping[str, torch.Tensor] | None = None,
                   others: Mapping[str, torch.Tensor] | None = None) -> SeedStability:
    """Per probe layer (``layers``, the unit's own last), the mean pairwise cosine of the renders'
    pooled vectors (``layer -> (S, C)``, one row per seed), of the top images' (``(K, C)``) and of
    the renders with ``others`` (other units' renders, ``(R, C)``). With ``top`` and ``reference``
    the vectors are standardised over those natural images."""
    natural = top is not None and reference is not None and len(top[layers[0]]) >= 2
    has_others = others is not None and len(others[layers[0]]) > 0
    rows = []
    for name in layers:
        render = renders[name].double()
        other = others[name].double() if has_others else render[:0]
        top_v = None
        if natural:
            both, top_v, _ = standardise(torch.cat([render, other]), top[name].double(), reference[name].double())
            render, other = both[:len(render)], both[len(render):]
        rows.append(SeedLayer(name, mean_pair_cosine(render), mean_pair_cosine(top_v) if natural else None,
                              mean_cross_cosine(render, other) if has_others else None))
    before = rows[:-1] or rows

    def mean(values: list) -> float | None:
        return None if values[0] is None else sum(values) / len(values)

    return SeedStability([int(s) for s in seeds], natural, rows, mean([r.seeds_cosine for r in before]),
                         mean([r.top_cosine for r in before]), mean([r.others_cosine for r in before]))
