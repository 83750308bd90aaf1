"""The input-gradient support of layer positions: what a receptive field is checked against.

A traced field is right when it equals the set of input pixels whose gradient reaches the
position. Max pooling and ReLUs route the gradient of one input to a subset of the field, so
the support is the union over a few random inputs; with a random channel mix per position no
pixel of the field can cancel out by symmetry, and none outside it can ever be reached.

Many probes share one forward and one backward pass: with the model in eval mode the images of
a batch are independent, so each probe (layer, y, x) gets its own slice of the batch, and the
gradient of the summed objective splits back into each probe's support.
"""

from __future__ import annotations

import contextlib

import torch
from torch.overrides import TorchFunctionMode

from featvis.core.hooks import capture, run_to_layers

Probe = tuple[str, int, int]  # layer, y, x


class FreezeGates(TorchFunctionMode):
    """Detach every (1, 1)-sized map that an op broadcasts over a larger map: a squeeze-excitation
    gate (or any global gate) becomes a per-channel constant, which is what a "local" field means.
    A 1x1 convolution's weight is a (1, 1)-sized 4-D tensor too; detaching it changes no input
    gradient."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        maps = [a for a in args if isinstance(a, torch.Tensor) and a.ndim == 4]
        if any(m.shape[-2:] == (1, 1) for m in maps) and any(m.shape[-2:] != (1, 1) for m in maps):
            args = tuple(a.detach() if isinstance(a, torch.Tensor) and a.ndim == 4 and a.shape[-2:] == (1, 1)
                         else a for a in args)
        return func(*args, **kwargs)


def redraw_silent_parameters(module: torch.nn.Module, seed: int = 0) -> None:
    """Draw again every parameter that is all zeros. timm starts the last norm of each residual
    branch at zero, so a fresh branch is silent and the gradient would not show how far it reaches;
    trained weights are not zero, and the field is what the architecture lets a position see."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.ndim and not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def gradient_supports(module: torch.nn.Module, shape: tuple[int, ...], probes: list[Probe], samples: int = 3,
                      frozen: bool = False, seed: int = 0) -> list[torch.Tensor]:
    """Per probe, the (H, W) mask of input pixels whose gradient reaches it, over ``samples`` random
    float64 inputs; ``frozen``: with global gates detached (:class:`FreezeGates`)."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(len(probes) * samples, *shape[1:], dtype=torch.float64, generator=generator)
    inputs.requires_grad_(True)
    layers = list(dict.fromkeys(layer for layer, _, _ in probes))
    with capture(module, layers, detach=False, stop_early=True) as out, \
            (FreezeGates() if frozen else contextlib.nullcontext()):
        run_to_layers(module, inputs, out)
    objective = torch.zeros((), dtype=torch.float64)
    for k, (layer, y, x) in enumerate(probes):
        act = out[layer][k * samples:(k + 1) * samples, :, y, x]
        mix = torch.randn(act.shape[1], generator=generator, dtype=torch.float64)  # no cancellation by symmetry
        objective = objective + (act * mix).sum()
    (grad,) = torch.autograd.grad(objective, inputs)
    reached = grad.abs().sum(dim=1) > 0
    return [reached[k * samples:(k + 1) * samples].any(dim=0) for k in range(len(probes))]


def box_mask(box: tuple[int, int, int, int], size: tuple[int, int]) -> torch.Tensor:
    y0, y1, x0, x1 = box
    mask = torch.zeros(size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def corner_centre_corner(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left, centre and bottom-right positions of a (H, W) map (padding differs at each)."""
    height, width = size
    return list(dict.fromkeys([(0, 0), (height // 2, width // 2), (height - 1, width - 1)]))
