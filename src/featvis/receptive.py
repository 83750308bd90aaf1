"""Exact receptive fields, traced from the geometry of the ops a forward pass runs.

Each spatial tensor carries, per axis, an affine map from its index ``i`` to the input
rows ``[jump * i + lo, jump * i + hi]`` it can see. Convolutions, pools and pads
transform the map; element-wise ops (residual adds, activations, batch norm) take the
union of their inputs' maps; anything that mixes all positions (global pooling,
flatten, unknown resampling) makes the field global. Tracing the real forward pass
handles asymmetric "same" padding and residual branches without knowing the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class Field:
    """Receptive field of one spatial tensor, per axis (y, x)."""

    jump: tuple[int, int]
    lo: tuple[int, int]
    hi: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return (self.hi[0] - self.lo[0] + 1, self.hi[1] - self.lo[1] + 1)

    def box(self, y: int, x: int, height: int, width: int) -> tuple[int, int, int, int]:
        """Input rows ``[y0, y1)`` and columns ``[x0, x1)`` seen by position (y, x), clipped."""
        y0, y1 = self.jump[0] * y + self.lo[0], self.jump[0] * y + self.hi[0] + 1
        x0, x1 = self.jump[1] * x + self.lo[1], self.jump[1] * x + self.hi[1] + 1
        return max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)


GLOBAL = None  # the field of a tensor whose every element can see the whole input
IDENTITY = Field((1, 1), (0, 0), (0, 0))


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[-1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _window(field: Field, kernel, stride, padding, dilation) -> Field:
    """A sliding window: output i reads input ``stride*i - pad + d*[0, k-1]``."""
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    return Field(
        tuple(field.jump[a] * s[a] for a in range(2)),
        tuple(field.lo[a] - field.jump[a] * p[a] for a in range(2)),
        tuple(field.hi[a] + field.jump[a] * (d[a] * (k[a] - 1) - p[a]) for a in range(2)),
    )


def _arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _conv(field: Field, args: tuple, kwargs: dict) -> Field | None:
    weight = _arg(args, kwargs, 1, "weight")
    padding = _arg(args, kwargs, 4, "padding", 0)
    dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
    kernel = tuple(weight.shape[-2:])
    if padding == "valid":
        padding = 0
    elif padding == "same":  # PyTorch puts the odd pixel on the right/bottom
        padding = tuple(dilation[a] * (kernel[a] - 1) // 2 for a in range(2))
    return _window(field, kernel, _arg(args, kwargs, 3, "stride", 1), padding, dilation)


def _pool(field: Field, args: tuple, kwargs: dict) -> Field | None:
    kernel = _arg(args, kwargs, 1, "kernel_size")
    stride = _arg(args, kwargs, 2, "stride") or kernel
    padding = _arg(args, kwargs, 3, "padding", 0)
    dilation = _arg(args, kwargs, 4, "dilation", 1) if "max" in _name_of_pool(args, kwargs) else 1
    return _window(field, kernel, stride, padding, dilation)


def _name_of_pool(args: tuple, kwargs: dict) -> str:
    return kwargs.get("_featvis_op", "")


def _pad(field: Field, args: tuple, kwargs: dict) -> Field | None:
    pad = list(_arg(args, kwargs, 1, "pad"))
    left, top = pad[0], pad[2] if len(pad) >= 4 else 0
    shift = (top, left)
    return Field(
        field.jump,
        tuple(field.lo[a] - field.jump[a] * shift[a] for a in range(2)),
        tuple(field.hi[a] - field.jump[a] * shift[a] for a in range(2)),
    )


def _union(fields: list[Field | None]) -> Field | None:
    if any(f is GLOBAL for f in fields) or len({f.jump for f in fields}) > 1:
        return GLOBAL
    return Field(
        fields[0].jump,
        tuple(min(f.lo[a] for f in fields) for a in range(2)),
        tuple(max(f.hi[a] for f in fields) for a in range(2)),
    )


def _op_name(func) -> str:
    return getattr(func, "__name__", "")


class _FieldTracer(TorchFunctionMode):
    """Follows every torch call of a forward pass and propagates fields through it."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, Field | None] = {}
        self._alive: list[torch.Tensor] = []  # keeps ids unique while tracing

    def track(self, tensor: torch.Tensor, field: Field | None) -> None:
        self.fields[id(tensor)] = field
        self._alive.append(tensor)

    def field_of(self, tensor: torch.Tensor) -> Field | None:
        return self.fields.get(id(tensor), GLOBAL)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves, _ = tree_flatten((args, kwargs))
        sources = [t for t in leaves if isinstance(t, torch.Tensor) and id(t) in self.fields]
        if not sources:
            return out
        field = self._propagate(_op_name(func), args, kwargs, sources, out)
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self.track(tensor, field)
        return out

    def _propagate(self, name: str, args, kwargs, sources, out) -> Field | None:
        first = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(first, torch.Tensor) or first.ndim < 3:
            return GLOBAL
        spatial = tuple(first.shape[-2:])
        fields = [self.field_of(t) for t in sources if t.ndim >= 3]
        main = self.field_of(args[0]) if args and isinstance(args[0], torch.Tensor) else GLOBAL
        if "conv2d" in name and "transpose" not in name and main is not GLOBAL:
            return _conv(main, args, kwargs)
        if ("max_pool2d" in name or "avg_pool2d" in name) and "adaptive" not in name and main is not GLOBAL:
            return _pool(main, args, {**kwargs, "_featvis_op": name})
        if name == "pad" and main is not GLOBAL and kwargs.get("mode", "constant") == "constant":
            return _pad(main, args, kwargs)
        # Anything else keeps the field only if it keeps every input's spatial grid.
        if all(tuple(t.shape[-2:]) == spatial for t in sources if t.ndim >= 3) and fields:
            broadcast = [self.field_of(t) for t in sources if t.ndim >= 3 and t.shape[-2:] != spatial]
            return _union(fields + broadcast)
        return GLOBAL


def receptive_fields(model: nn.Module, input_shape: tuple[int, ...], layers: Iterable[str]) -> dict[str, Field | None]:
    """The receptive field of each named layer's output (``None`` where it is global)."""
    from featvis.hooks import get_layer

    names = list(layers)
    found: dict[str, Field | None] = {}
    tracer = _FieldTracer()

    def make_hook(name: str):
        def hook(_module, _inputs, output):
            if name in found:  # a module called twice: its first call, as in the layer table
                return
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            found[name] = tracer.field_of(tensor) if isinstance(tensor, torch.Tensor) and tensor.ndim == 4 else GLOBAL

        return hook

    handles = [get_layer(model, name).register_forward_hook(make_hook(name)) for name in names]
    try:
        param = next(model.parameters(), None)
        like = {"device": param.device, "dtype": param.dtype} if param is not None else {}
        x = torch.zeros(input_shape, **like)
        with torch.no_grad(), tracer:
            tracer.track(x, IDENTITY)
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: found.get(name, GLOBAL) for name in names}
