"""A token layer's patch grid, and the layer names that read its class and register tokens.

No torch import at module level: the start checks resolve ``<layer>@cls`` names against the
cached model structure without loading torch (:mod:`featvis.core.tokens` does the tensor work).
A name ``<module>@<token>`` reads one prefix token of a token layer as a non-spatial unit:
``@cls`` (the class token), ``@dist`` (a distillation token), ``@reg<k>`` (register ``k``), or
``@<index>`` (the token at that place in the prefix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SEPARATOR = "@"  # `blocks.11@cls`: a prefix token of a token layer, a non-spatial unit


class PrefixTokenError(ValueError):
    """A ``layer@token`` name that does not name a prefix token of a token layer."""


@dataclass(frozen=True)
class TokenGrid:
    prefix: int
    height: int
    width: int
    names: tuple[str, ...] = field(default=(), compare=False)  # the prefix tokens' names ("cls", "reg0"...)

    @property
    def tokens(self) -> int:
        return self.prefix + self.height * self.width

    def to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, prefix + H*W, C)`` -> ``(B, C, H, W)``: the patch tokens in raster order."""
        batch, _, channels = tokens.shape
        return tokens[:, self.prefix:].transpose(1, 2).reshape(batch, channels, self.height, self.width)

    def to_tokens(self, spatial: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_map`: ``tokens`` with its patch tokens taken from ``spatial``."""
        import torch

        return torch.cat([tokens[:, : self.prefix], spatial.flatten(2).transpose(1, 2)], 1)

    def describe(self) -> str:
        return f"{self.height}x{self.width}" + (f"+{self.prefix}" if self.prefix else "")


def default_names(prefix: int) -> tuple[str, ...]:
    """Prefix-token names when the model does not declare them: the first is the class token
    (the BERT/ViT convention), the rest are reached by index ("")."""
    return ("cls", *[""] * (prefix - 1)) if prefix else ()


def split_layer(name: str) -> tuple[str, str | None]:
    """``blocks.11@cls`` -> ``("blocks.11", "cls")``; a module name -> ``(name, None)``."""
    module, separator, token = name.partition(SEPARATOR)
    return (module, token) if separator else (name, None)


def prefix_suffixes(grid: TokenGrid) -> list[str]:
    """Every valid ``@token`` of a token layer: its prefix tokens by name, then by index."""
    return [SEPARATOR + n for n in grid.names if n] + [f"{SEPARATOR}{i}" for i in range(grid.prefix)]


def prefix_index(layer: str, grid: TokenGrid | None) -> int:
    """Where in the token sequence the prefix token that ``layer`` (``<module>@<token>``) names sits;
    the one place a suffix is resolved. Fails naming the layer and why."""
    module, token = split_layer(layer)
    if grid is None:
        raise PrefixTokenError(f"layer {layer!r}: {module!r} is not a token layer (an output of (batch, tokens, "
                               f"channels) over a patch grid), so it has no {SEPARATOR}{token} token; "
                               f"use {module!r} itself")
    if grid.prefix == 0:
        raise PrefixTokenError(f"layer {layer!r}: {module!r} has no class or register tokens (its tokens are "
                               f"the {grid.describe()} patch grid only); use {module!r} itself, or a later layer")
    if token.isdigit() and int(token) < grid.prefix:
        return int(token)
    if token and token in grid.names:
        return grid.names.index(token)
    raise PrefixTokenError(f"layer {layer!r}: unknown token {SEPARATOR}{token} of {module!r}, whose "
                           f"{grid.prefix} prefix token(s) are {', '.join(prefix_suffixes(grid))}")
