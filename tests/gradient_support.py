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
    """Detach every (1, 1)-sized map that an op spreads over a larger map (by broadcasting or
    ``expand``): a squeeze-excitation gate (or any global gate) becomes a per-channel constant,
    which is what a "local" field means. Parameters (a 1x1 convolution's weight) are left alone."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if any(_is_gate(a) for a in args) and isinstance(out, torch.Tensor) and _is_map(out):
            out = func(*[a.detach() if _is_gate(a) else a for a in args], **kwargs)
        return out


def _is_map(tensor: torch.Tensor) -> bool:
    return tensor.ndim == 4 and tuple(tensor.shape[-2:]) != (1, 1)


def _is_gate(value) -> bool:
    return (isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter) and value.ndim == 4
            and tuple(value.shape[-2:]) == (1, 1))


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
    with one_thread():
        return _gradient_supports(module, shape, probes, samples, frozen, seed)


@contextlib.contextmanager
def one_thread():
    """Small float64 passes gain little from a second thread, and lose a lot when the cores are
    shared (CI's two, or a busy machine): a thread waiting at every op's barrier for the other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _gradient_supports(module: torch.nn.Module, shape: tuple[int, ...], probes: list[Probe], samples: int,
                       frozen: bool, seed: int) -> list[torch.Tensor]:
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
