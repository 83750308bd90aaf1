"""Token outputs as spatial maps: a transformer layer's ``(B, tokens, C)`` becomes ``(B, C, H, W)``.

A ViT-style model cuts its input into an ``H x W`` grid of patches and prepends class (and
register) tokens. A layer whose output has ``prefix + H * W`` tokens is read as a map over
that grid, so every stage that works on CNN feature maps works on it too; the prefix tokens
stay available as non-spatial units (:func:`prefix_tokens`).

The grid is found once per model, by one probe forward pass (:func:`attach_token_grids`):
the patch grid is the last 4-D output seen before the token layer whose ``H * W`` leaves a
small prefix (0 to ``MAX_PREFIX`` tokens). Each token layer's module then carries its
:class:`TokenGrid`, which survives copies of the model, and :func:`layer_output` applies it
wherever a layer's output is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

ATTRIBUTE = "featvis_token_grid"
MAX_PREFIX = 16  # class + register tokens; more than this is not taken for a prefix


@dataclass(frozen=True)
class TokenGrid:
    prefix: int
    height: int
    width: int

    @property
    def tokens(self) -> int:
        return self.prefix + self.height * self.width

    def to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, prefix + H*W, C)`` -> ``(B, C, H, W)``: the patch tokens in raster order."""
        batch, _, channels = tokens.shape
        return tokens[:, self.prefix:].transpose(1, 2).reshape(batch, channels, self.height, self.width)

    def to_tokens(self, spatial: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_map`: ``tokens`` with its patch tokens taken from ``spatial``."""
        return torch.cat([tokens[:, : self.prefix], spatial.flatten(2).transpose(1, 2)], 1)

    def describe(self) -> str:
        return f"{self.height}x{self.width}" + (f"+{self.prefix}" if self.prefix else "")


def prefix_tokens(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """The class/register tokens of a token layer's output, ``(B, prefix, C)``: non-spatial units."""
    return output[:, : token_grid(module).prefix]


def token_grid(module: nn.Module) -> TokenGrid | None:
    return getattr(module, ATTRIBUTE, None)


def layer_output(module: nn.Module, output: Any) -> Any:
    """What featvis reads from a module's output: the spatial map of a token layer, else the output."""
    grid = token_grid(module)
    if grid is not None and isinstance(output, torch.Tensor) and output.ndim == 3 and output.shape[1] == grid.tokens:
        return grid.to_map(output)
    return output


def attach_token_grids(model: nn.Module, input_shape: tuple[int, ...],
                       fixed: Mapping[str, int] | None = None) -> dict[str, TokenGrid]:
    """Find each token layer's grid in one probe pass and mark its module; ``fixed`` (the config's
    ``token_grid``: prefix, height, width) replaces the inference. Returns ``{layer: grid}``."""
    from featvis.core.hooks import probe_pass  # hooks imports this module

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
