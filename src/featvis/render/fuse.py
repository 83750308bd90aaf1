"""A render-only copy of a model: frozen weights, BatchNorm folded into its conv.

Rendering differentiates with respect to the image only, so weight gradients are pure
waste; an eval-mode BatchNorm right after a convolution is an affine map that the
convolution can absorb. Module names are kept (a folded BatchNorm becomes an
``Identity`` whose output equals the old one), so every layer name still resolves.
A conv whose own output an objective reads is left unfolded, and the copy is checked
against the original on a probe input; if they disagree the plain frozen copy is used.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable

import torch
from torch import nn

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _conv_bn_pairs(model: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, bn) names where the BatchNorm's input is exactly that conv's output tensor."""
    produced: dict[int, str] = {}
    pairs: list[tuple[str, str]] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(
                lambda _m, _i, out, name=name: produced.__setitem__(id(out), name)))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_hook(
                lambda _m, inp, _o, name=name: pairs.append((produced.get(id(inp[0]), ""), name))))
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for handle in handles:
            handle.remove()
    return [(conv, bn) for conv, bn in pairs if conv]


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight = nn.Parameter((conv.weight * scale.reshape(-1, 1, 1, 1)).detach(), requires_grad=False)
    conv.bias = nn.Parameter(((bias - bn.running_mean) * scale + bn.bias).detach(), requires_grad=False)


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def _state_token(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, moved or modified in place."""
    tensors = list(model.parameters()) + list(model.buffers())
    return tuple((t.data_ptr(), t._version, t.device.type) for t in tensors)


def prepare_model(model: nn.Module, keep: Iterable[str] = (), channels: int = 3,
                  probe_size: int | tuple[int, int] = 64, fold: bool = True) -> nn.Module:
    """An eval-mode, frozen copy of ``model`` for rendering (cached per model and ``keep``);
    ``channels`` and ``probe_size`` are the model's input (the fold is checked on a probe of it)."""
    key = (frozenset(keep), channels, fold)
    token = _state_token(model)
    cached_token, per_model = _CACHE.get(model, (None, {}))
    if cached_token != token:  # weights changed in place (e.g. training) or moved: start afresh
        per_model = {}
        _CACHE[model] = (token, per_model)
    if key in per_model:
        return per_model[key]
    frozen = copy.deepcopy(model).eval().requires_grad_(False)
    prepared = frozen
    if fold and any(isinstance(m, nn.BatchNorm2d) for m in frozen.modules()):
        size = (probe_size, probe_size) if isinstance(probe_size, int) else tuple(probe_size)
        probe = torch.randn(2, channels, *size, generator=torch.Generator().manual_seed(0))
        probe = probe.to(next(frozen.parameters()).device)
        folded = copy.deepcopy(frozen)
        modules = dict(folded.named_modules())
        for conv_name, bn_name in _conv_bn_pairs(folded, probe):
            if conv_name in key[0] or modules[bn_name].training:
                continue
            _fold(modules[conv_name], modules[bn_name])
            _set_module(folded, bn_name, nn.Identity())
        with torch.no_grad():
            if torch.allclose(folded(probe), frozen(probe), rtol=1e-3, atol=1e-4):
                prepared = folded
    prepared = prepared.to(memory_format=torch.channels_last)
    per_model[key] = prepared
    return prepared
