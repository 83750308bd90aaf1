"""Exact receptive fields, traced from the ops a real forward pass runs.

A probe forward pass records every spatial op (convolution, pooling, padding,
element-wise joins such as residual adds, and anything that mixes all positions)
as a small graph. Two things are read off it:

* the nominal field of a layer (size, stride, offset in input pixels) for the layer
  table, by composing each op's window along the graph;
* the exact input box one output position sees, by walking the graph backwards from
  that position and dropping positions that fall into padding at every depth. This
  is what patches are cut at: near borders, padding, dilation and unused rows make
  the nominal field too large, and the walk gets it right.

Asymmetric "same" padding and residual branches need no model-specific code.

A :class:`LayerField` holds the box of every output position, so it is traced once per
model (rule ``layer_table``), saved with :func:`save_fields` and read back with
:func:`load_fields` by every view that cuts patches.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from featvis.core.hooks import capture, get_layer, probe_input, run_to_layers
from featvis.core.io import save_npz
from featvis.core.tokengrid import TokenGrid, split_layer
from featvis.core.tokens import token_grid

Interval = tuple[int, int]  # inclusive [first, last]


@dataclass(frozen=True)
class Field:
    """Nominal receptive field of a layer, per axis (y, x): position ``i`` sees input
    rows ``jump * i + lo`` to ``jump * i + hi`` (before clipping at the border)."""

    jump: tuple[int, int]
    lo: tuple[int, int]
    hi: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        return (self.hi[0] - self.lo[0] + 1, self.hi[1] - self.lo[1] + 1)


IDENTITY = Field((1, 1), (0, 0), (0, 0))


@dataclass(frozen=True)
class _Window:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]


@dataclass
class _Node:
    kind: str  # input | window | pad | join | global
    inputs: tuple[int, ...]
    size: tuple[int, int]
    field: Field | None  # None: every output position sees the whole input
    window: _Window | None = None
    shift: tuple[int, int] = (0, 0)  # pad: rows/cols added before the start


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[-1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _conv_window(args: tuple, kwargs: dict) -> _Window:
    kernel = tuple(_arg(args, kwargs, 1, "weight").shape[-2:])
    dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
    padding = _arg(args, kwargs, 4, "padding", 0)
    if padding == "valid":
        padding = 0
    elif padding == "same":  # PyTorch adds the odd pixel at the end, which a window never needs first
        padding = tuple(dilation[a] * (kernel[a] - 1) // 2 for a in range(2))
    return _Window(kernel, _pair(_arg(args, kwargs, 3, "stride", 1)), _pair(padding), dilation)


def _pool_window(name: str, args: tuple, kwargs: dict) -> _Window:
    kernel = _arg(args, kwargs, 1, "kernel_size")
    stride = _arg(args, kwargs, 2, "stride") or kernel
    dilation = _arg(args, kwargs, 4, "dilation", 1) if "max" in name else 1
    return _Window(_pair(kernel), _pair(stride), _pair(_arg(args, kwargs, 3, "padding", 0)), _pair(dilation))


def _compose_window(field: Field | None, w: _Window) -> Field | None:
    if field is None:
        return None
    return Field(
        tuple(field.jump[a] * w.stride[a] for a in range(2)),
        tuple(field.lo[a] - field.jump[a] * w.padding[a] for a in range(2)),
        tuple(field.hi[a] + field.jump[a] * (w.dilation[a] * (w.kernel[a] - 1) - w.padding[a]) for a in range(2)),
    )


def _compose_shift(field: Field | None, shift: tuple[int, int]) -> Field | None:
    if field is None:
        return None
    return Field(
        field.jump,
        tuple(field.lo[a] - field.jump[a] * shift[a] for a in range(2)),
        tuple(field.hi[a] - field.jump[a] * shift[a] for a in range(2)),
    )


def _union(fields: list[Field | None]) -> Field | None:
    if any(f is None for f in fields) or len({f.jump for f in fields}) > 1:
        return None
    return Field(
        fields[0].jump,
        tuple(min(f.lo[a] for f in fields) for a in range(2)),
        tuple(max(f.hi[a] for f in fields) for a in range(2)),
    )


class _GraphTracer(TorchFunctionMode):
    """Records the spatial ops of one forward pass as a graph of ``_Node``s."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.nodes = [_Node("input", (), tuple(image.shape[-2:]), IDENTITY)]
        self.node_of = {id(image): 0}
        self._alive = [image]  # keeps tensor ids unique while tracing

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves = tree_flatten((args, kwargs))[0]
        sources = [t for t in leaves if isinstance(t, torch.Tensor) and id(t) in self.node_of]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if sources and outputs:
            node = self._node(getattr(func, "__name__", ""), args, kwargs, sources, outputs[0])
            self.nodes.append(node)
            for tensor in outputs:
                self.node_of[id(tensor)] = len(self.nodes) - 1
                self._alive.append(tensor)
        return out

    def _node(self, name: str, args, kwargs, sources, out: torch.Tensor) -> _Node:
        ids = tuple(self.node_of[id(t)] for t in sources)
        if out.ndim < 3:
            return _Node("global", ids, (1, 1), None)
        size = tuple(out.shape[-2:])
        first = args[0] if args and isinstance(args[0], torch.Tensor) and id(args[0]) in self.node_of else None
        if first is not None:
            parent = self.nodes[self.node_of[id(first)]]
            window = None
            if "conv2d" in name and "transpose" not in name:
                window = _conv_window(args, kwargs)
            elif ("max_pool2d" in name or "avg_pool2d" in name) and "adaptive" not in name:
                window = _pool_window(name, args, kwargs)
            if window is not None:
                return _Node("window", (ids[0],), size, _compose_window(parent.field, window), window=window)
            if name == "pad" and kwargs.get("mode", _arg(args, kwargs, 2, "mode", "constant")) == "constant":
                pad = list(_arg(args, kwargs, 1, "pad"))
                shift = (pad[2] if len(pad) >= 4 else 0, pad[0])
                return _Node("pad", (ids[0],), size, _compose_shift(parent.field, shift), shift=shift)
        same_grid = [i for i in ids if self.nodes[i].size == size]
        broadcast = [i for i in ids if self.nodes[i].size == (1, 1) and size != (1, 1)]
        if same_grid and len(same_grid) + len(broadcast) == len(ids):
            return _Node("join", ids, size, _union([self.nodes[i].field for i in ids]))
        return _Node("global", ids, size, None)  # resampling or mixing we cannot map: all of it


def _window_taps(w: _Window, axis: int, positions: Interval, n_in: int) -> Interval | None:
    """First and last valid input position read by output positions in ``positions``."""
    k, s, p, d = w.kernel[axis], w.stride[axis], w.padding[axis], w.dilation[axis]

    def valid(r: int) -> list[int]:
        return [t for t in range(s * r - p, s * r - p + d * (k - 1) + 1, d) if 0 <= t < n_in]

    first = next((min(v) for r in range(positions[0], positions[1] + 1) if (v := valid(r))), None)
    last = next((max(v) for r in range(positions[1], positions[0] - 1, -1) if (v := valid(r))), None)
    return None if first is None else (first, last)


def _hull(a: tuple[Interval, Interval] | None, b: tuple[Interval, Interval]) -> tuple[Interval, Interval]:
    if a is None:
        return b
    return tuple((min(a[i][0], b[i][0]), max(a[i][1], b[i][1])) for i in range(2))


class ReceptiveFields:
    """Receptive fields of named layers of ``model`` at a given input shape."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], layers: Iterable[str]) -> None:
        self.input_size = tuple(input_shape[-2:])
        self.layer_node: dict[str, int | None] = {}
        self.model, self.input_shape = model, tuple(input_shape)
        self._tokens: dict[str, LayerField | None] = {}
        image = probe_input(model, input_shape)
        tracer = _GraphTracer(image)

        def make_hook(name: str):
            def hook(_module, _inputs, output) -> None:
                tensor = output[0] if isinstance(output, (tuple, list)) else output
                if name not in self.layer_node:  # a module called twice: its first call
                    spatial = isinstance(tensor, torch.Tensor) and tensor.ndim == 4
                    self.layer_node[name] = tracer.node_of.get(id(tensor)) if spatial else None

            return hook

        handles = [get_layer(model, name).register_forward_hook(make_hook(name)) for name in layers]
        try:
            with torch.no_grad(), tracer:
                model(image)
        finally:
            for handle in handles:
                handle.remove()
        self.nodes = tracer.nodes

    def field(self, layer: str) -> Field | None:
        """Nominal field (size, stride, offset); ``None`` where it is the whole image."""
        if split_layer(layer)[1] is not None:  # a class/register token: one unit, no position on the grid
            return None
        grid = token_grid(get_layer(self.model, layer))
        if grid is not None:
            field = self.layer_field(layer)
            return field.nominal if field is not None and field.kind == "exact" else None
        node = self.layer_node.get(layer)
        return None if node is None else self.nodes[node].field

    def layer_field(self, layer: str) -> LayerField | None:
        """The layer's field with the exact box of every output position (``None``: global)."""
        if split_layer(layer)[1] is not None:  # a prefix token: read like a classifier's fc, whole images
            return None
        if token_grid(get_layer(self.model, layer)) is not None:
            if layer not in self._tokens:  # every token layer of the trace at once: one forward pass
                grids = {name: token_grid(get_layer(self.model, name)) for name in self.layer_node
                         if split_layer(name)[1] is None}
                self._tokens.update(token_fields(self.model, self.input_shape, {
                    name: grid for name, grid in grids.items() if grid is not None and name not in self._tokens}))
            return self._tokens[layer]
        nominal = self.field(layer)
        if nominal is None:
            return None
        height, width = self.nodes[self.layer_node[layer]].size
        boxes = [self.box(layer, y, x) for y in range(height) for x in range(width)]
        return LayerField(nominal, self.input_size, np.array(boxes, dtype=np.int32).reshape(height, width, 4))

    def box(self, layer: str, y: int, x: int) -> tuple[int, int, int, int]:
        """Input rows ``[y0, y1)`` and columns ``[x0, x1)`` that position (y, x) sees."""
        height, width = self.input_size
        node = self.layer_node.get(layer)
        if node is None:
            return 0, height, 0, width
        wanted: dict[int, tuple[Interval, Interval]] = {node: ((y, y), (x, x))}
        for index in range(node, 0, -1):  # nodes were recorded in execution order
            if index in wanted:
                self._push(self.nodes[index], wanted.pop(index), wanted)
        if 0 not in wanted:  # the position lies in padding: it sees no pixel
            return 0, 0, 0, 0
        (y0, y1), (x0, x1) = wanted[0]
        return y0, y1 + 1, x0, x1 + 1

    def _push(self, node: _Node, span: tuple[Interval, Interval], wanted: dict) -> None:
        for parent in node.inputs:
            size = self.nodes[parent].size
            if node.kind == "window":
                taps = [_window_taps(node.window, a, span[a], size[a]) for a in range(2)]
                request = None if None in taps else tuple(taps)
            elif node.kind == "pad":
                shifted = [(max(span[a][0] - node.shift[a], 0), min(span[a][1] - node.shift[a], size[a] - 1))
                           for a in range(2)]
                request = tuple(shifted) if all(lo <= hi for lo, hi in shifted) else None
            elif node.kind == "join" and size == node.size:
                request = span
            else:  # global ops and broadcast inputs: every position of the input
                request = ((0, size[0] - 1), (0, size[1] - 1))
            if request is not None:
                wanted[parent] = _hull(wanted.get(parent), request)


@dataclass(frozen=True, eq=False)
class LayerField:
    """A layer's nominal field plus the exact clipped box of every output position."""

    nominal: Field
    input_size: tuple[int, int]
    boxes: np.ndarray  # (H, W, 4) int32: y0, y1, x0, x1 of each position of the layer's grid
    kind: str = "exact"  # "token": each token sees the whole image; boxes are its own patch

    @property
    def size(self) -> tuple[int, int]:
        return self.nominal.size

    @property
    def jump(self) -> tuple[int, int]:
        return self.nominal.jump

    @property
    def lo(self) -> tuple[int, int]:
        return self.nominal.lo

    def box(self, y: int, x: int, height: int | None = None, width: int | None = None) -> tuple[int, int, int, int]:
        """Exact input box ``(y0, y1, x0, x1)`` of position (y, x), clipped to the image."""
        if (height, width) != (None, None) and (height, width) != self.input_size:
            raise ValueError(f"fields were traced at {self.input_size}, not {(height, width)}")
        y0, y1, x0, x1 = self.boxes[y, x]
        return int(y0), int(y1), int(x0), int(x1)


def receptive_fields(
    model: nn.Module, input_shape: tuple[int, ...], layers: Iterable[str]
) -> dict[str, LayerField | None]:
    """Each named layer's receptive field (``None`` where every position sees the whole image)."""
    layers = list(layers)
    traced = ReceptiveFields(model, input_shape, layers)
    return {name: traced.layer_field(name) for name in layers}


def save_fields(path: str | os.PathLike, input_shape: tuple[int, ...], fields: Mapping[str, LayerField | None],
                interpolation: str = "bilinear", crop_pct: float = 1.0) -> None:
    """Write layers' fields to one ``.npz``; a global field is listed with no arrays. The fields are
    boxes in the image as the model sees it, so how that image is made (``interpolation``,
    ``crop_pct``) goes with them, for what cuts patches without loading the model."""
    arrays = {"input_shape": np.array(input_shape, dtype=np.int64), "layers": np.array(list(fields), dtype=str),
              "interpolation": np.array(interpolation), "crop_pct": np.array(crop_pct, dtype=np.float64)}
    for name, field in fields.items():
        if field is not None:
            arrays[f"{name}:nominal"] = np.array([field.jump, field.lo, field.nominal.hi], dtype=np.int64)
            arrays[f"{name}:boxes"] = field.boxes
            arrays[f"{name}:kind"] = np.array(field.kind)
    save_npz(path, **arrays)


def load_fields(path: str | os.PathLike) -> tuple[tuple[int, ...], dict[str, LayerField | None]]:
    """The input shape the fields were traced at, and each saved layer's field."""
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["input_shape"])
        fields: dict[str, LayerField | None] = {}
        for name in data["layers"].tolist():
            if f"{name}:boxes" not in data:
                fields[name] = None
                continue
            jump, lo, hi = (tuple(int(v) for v in row) for row in data[f"{name}:nominal"])
            kind = str(data[f"{name}:kind"]) if f"{name}:kind" in data else "exact"
            fields[name] = LayerField(Field(jump, lo, hi), shape[-2:], data[f"{name}:boxes"], kind)
    return shape, fields


def load_view(path: str | os.PathLike) -> tuple[str, float]:
    """The interpolation and crop_pct of the images the fields in ``path`` were traced for."""
    with np.load(path) as data:
        if "interpolation" not in data:  # written before these were saved: the defaults then
            return "bilinear", 1.0
        return str(data["interpolation"]), float(data["crop_pct"])


# --- token layers: the field is read off the input gradient -----------------------------


def token_supports(model: nn.Module, input_shape: tuple[int, ...], tokens: Mapping[str, tuple[int, int]]
                   ) -> dict[str, np.ndarray]:
    """Per token layer, the input pixels (H, W) whose gradient reaches its token (y, x), on a random
    probe: one forward pass, then one backward per layer through the part of the graph below it."""
    like = probe_input(model, input_shape)
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device).requires_grad_(True)
    supports = {}
    with torch.enable_grad(), capture(model, tokens, detach=False, stop_early=True) as out:
        run_to_layers(model, image, out)
        for layer, (y, x) in tokens.items():
            (grad,) = torch.autograd.grad(out[layer][0, :, y, x].square().sum(), image, retain_graph=True,
                                          allow_unused=True)
            supports[layer] = (grad[0].abs().sum(0) > 0).cpu().numpy() if grad is not None else None
    return supports


def token_fields(model: nn.Module, input_shape: tuple[int, ...], grids: Mapping[str, TokenGrid]
                 ) -> dict[str, LayerField]:
    """Token layers' fields: each token's own patch. Where the centre token's gradient support stays
    inside its patch (the patch embedding and per-token layers) that is the exact field (kind
    ``exact``); once attention has mixed tokens it is the whole image, and the patch is only where
    the token sits (kind ``token``)."""
    centres = {layer: (grid.height // 2, grid.width // 2) for layer, grid in grids.items()}
    supports = token_supports(model, input_shape, centres)
    return {layer: _token_field(grid, input_shape[-2:], supports[layer]) for layer, grid in grids.items()}


def _token_field(grid: TokenGrid, size: tuple[int, int], support: np.ndarray | None) -> LayerField:
    patch = (size[0] // grid.height, size[1] // grid.width)
    boxes = np.array([[(py * patch[0], (py + 1) * patch[0], px * patch[1], (px + 1) * patch[1])
                       for px in range(grid.width)] for py in range(grid.height)], dtype=np.int32)
    outside = np.zeros(size, dtype=bool) if support is None else support.copy()
    y0, y1, x0, x1 = boxes[grid.height // 2, grid.width // 2]
    outside[y0:y1, x0:x1] = False
    nominal = Field(patch, (0, 0), (patch[0] - 1, patch[1] - 1))
    return LayerField(nominal, tuple(size), boxes, "token" if outside.any() else "exact")
