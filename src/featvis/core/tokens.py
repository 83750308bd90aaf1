"""Token outputs as spatial maps: a transformer layer's ``(B, tokens, C)`` becomes ``(B, C, H, W)``.

A ViT-style model cuts its input into an ``H x W`` grid of patches and prepends class (and
register) tokens. A layer whose output has ``prefix + H * W`` tokens is read as a map over
that grid, so every stage that works on CNN feature maps works on it too. The prefix tokens
are non-spatial units: the layer name ``<layer>@cls`` (or ``@reg<k>``, ``@dist``, ``@<index>``)
reads one of them as an ``(B, C)`` output, as a classifier's ``fc`` is read
(:mod:`featvis.core.tokengrid`).

The grid is found once per model, by one probe forward pass (:func:`attach_token_grids`):
the patch grid is the last 4-D output seen before the token layer whose ``H * W`` leaves a
small prefix (0 to ``MAX_PREFIX`` tokens). Each token layer's module then carries its
:class:`TokenGrid`, which survives copies of the model, and :func:`layer_output` applies it
wherever a layer's output is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from featvis.core.probe import probe_pass
from featvis.core.tokengrid import PrefixTokenError, TokenGrid, default_names

ATTRIBUTE = "featvis_token_grid"
MAX_PREFIX = 16  # class + register tokens; more than this is not taken for a prefix


def prefix_tokens(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """The class/register tokens of a token layer's output, ``(B, prefix, C)``: non-spatial units."""
    return output[:, : token_grid(module).prefix]


def prefix_names(model: nn.Module, prefix: int) -> tuple[str, ...]:
    """Names of a layer's ``prefix`` tokens: as the model declares them (timm's ``cls_token``,
    ``dist_token`` and ``reg_token``, in the order timm concatenates them) when that count
    matches, else the convention that the first is the class token ("" = by index only)."""
    declared: list[str] = []
    if getattr(model, "cls_token", None) is not None:
        declared.append("cls")
    if getattr(model, "dist_token", None) is not None:
        declared.append("dist")
    registers = getattr(model, "reg_token", None)
    if isinstance(registers, torch.Tensor):
        declared += [f"reg{k}" for k in range(registers.shape[1])]
    if hasattr(model, "cls_token") and len(declared) == prefix:
        return tuple(declared)
    return default_names(prefix)


def token_grid(module: nn.Module) -> TokenGrid | None:
    return getattr(module, ATTRIBUTE, None)


def layer_output(module: nn.Module, output: Any, token: int | None = None) -> Any:
    """What featvis reads from a module's output: the spatial map of a token layer (or, with
    ``token``, that prefix token as ``(B, C)``), else the output."""
    grid = token_grid(module)
    if grid is not None and isinstance(output, torch.Tensor) and output.ndim == 3 and output.shape[1] == grid.tokens:
        return grid.to_map(output) if token is None else output[:, token]
    if token is not None:
        raise PrefixTokenError(f"expected a ({grid.tokens if grid else '?'} tokens, channels) output to read "
                               f"prefix token {token} from, got {type(output).__name__} "
                               f"{tuple(getattr(output, 'shape', ()))}")
    return output


def attach_token_grids(model: nn.Module, input_shape: tuple[int, ...],
                       fixed: Mapping[str, int] | None = None) -> dict[str, TokenGrid]:
    """Find each token layer's grid in one probe pass and mark its module; ``fixed`` (the config's
    ``token_grid``: prefix, height, width) replaces the inference. Returns ``{layer: grid}``."""
    grids: dict[str, TokenGrid] = {}
    seen_grids: list[tuple[int, int]] = []
    wanted = TokenGrid(int(fixed.get("prefix", 1)), int(fixed["height"]), int(fixed["width"])) if fixed else None

    def make_hook(name: str, module: nn.Module):
        def hook(_module, _inputs, output) -> None:
            if not isinstance(output, torch.Tensor):
                return
            if output.ndim == 4:
                seen_grids.append(tuple(output.shape[-2:]))
            elif output.ndim == 3 and name not in grids:
                grid = wanted if wanted is not None else _infer(int(output.shape[1]), seen_grids)
                if grid is not None and grid.tokens == output.shape[1]:
                    grids[name] = grid

        return hook

    probe_pass(model, input_shape, {n: make_hook(n, m) for n, m in model.named_modules() if n})
    grids = {name: replace(grid, names=prefix_names(model, grid.prefix)) for name, grid in grids.items()}
    modules = dict(model.named_modules())
    for name, module in modules.items():
        if name:
            setattr(module, ATTRIBUTE, grids.get(name))
    return grids


def _infer(tokens: int, seen: list[tuple[int, int]]) -> TokenGrid | None:
    for height, width in reversed(seen):
        if 0 <= tokens - height * width <= MAX_PREFIX:
            return TokenGrid(tokens - height * width, height, width)
    return None
