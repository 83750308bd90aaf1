"""Penalties on the image itself (the 'frequency penalty' family of Olah et al. 2017).

Each regularizer maps images (B, 3, H, W) in [0, 1] to one penalty per item; the
render loop subtracts ``weight * penalty`` from the objective. Means, not sums, so a
weight means the same at every image size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from featvis.core.registry import registrar

Regularizer = Callable[[torch.Tensor], torch.Tensor]
REGULARIZERS: dict[str, Callable[..., Regularizer]] = {}


register_regularizer = registrar(REGULARIZERS)


@register_regularizer("l1")
def l1(centre: float = 0.5) -> Regularizer:
    """Mean absolute distance from a grey image."""
    return lambda x: (x - centre).abs().flatten(1).mean(1)


@register_regularizer("l2")
def l2(centre: float = 0.5) -> Regularizer:
    """Mean squared distance from a grey image."""
    return lambda x: (x - centre).pow(2).flatten(1).mean(1)


@register_regularizer("tv")
def total_variation() -> Regularizer:
    """Mean absolute difference between horizontal and vertical neighbours."""

    def penalty(x: torch.Tensor) -> torch.Tensor:
        dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
        dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        return dx + dy

    return penalty


@register_regularizer("blur")
def blur(size: int = 3) -> Regularizer:
    """Pull the image towards its own box-blurred copy (the copy is a constant target)."""

    def penalty(x: torch.Tensor) -> torch.Tensor:
        kernel = x.new_full((x.shape[1], 1, size, size), 1.0 / size**2)
        target = F.conv2d(F.pad(x, [size // 2] * 4, mode="replicate"), kernel, groups=x.shape[1])
        return 0.5 * (x - target.detach()).pow(2).flatten(1).mean(1)

    return penalty


class Penalties:
    """Weighted sum of regularizers built from ``[{"name": "tv", "weight": 0.05}, ...]``."""

    def __init__(self, specs: Sequence[Mapping[str, Any]] | None = None) -> None:
        self.terms: list[tuple[float, Regularizer]] = []
        for spec in specs or []:
            options = dict(spec)
            name = options.pop("name", None)
            weight = float(options.pop("weight", 1.0))
            if name not in REGULARIZERS:
                raise KeyError(f"unknown regularizer {name!r}; known: {', '.join(sorted(REGULARIZERS))}")
            self.terms.append((weight, REGULARIZERS[name](**options)))

    def __bool__(self) -> bool:
        return bool(self.terms)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        total = images.new_zeros(images.shape[0])
        for weight, term in self.terms:
            total = total + weight * term(images)
        return total
