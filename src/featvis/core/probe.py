"""Probe forward passes: one pass of a zeros input with hooks attached, then released.

Kept apart from :mod:`featvis.core.hooks` so that token-grid discovery (:mod:`featvis.core.tokens`),
which hooks reads, can run a probe without importing it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def probe_input(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Zeros of ``input_shape`` on the model's device and in its dtype."""
    param = next(model.parameters(), None)
    like = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    return torch.zeros(input_shape, **like)


def probe_pass(model: nn.Module, input_shape: tuple[int, ...], hooks: dict[str, Callable]) -> None:
    """One forward pass of a probe input with ``{module name: forward hook}`` attached, then released."""
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with torch.no_grad():
            model(probe_input(model, input_shape))
    finally:
        for handle in handles:
            handle.remove()
