"""Exact receptive fields, traced from the ops a real forward pass runs.

A probe forward pass records every op on a tensor that depends on the input as a small
graph. Each node knows which of its tensor's dimensions hold the map's rows and columns
(``axes``; ``(2, 3)`` for NCHW, ``(1, 2)`` channels-last), so permutes, reshapes that keep
H and W, and per-position channel ops (``F.linear`` or ``F.layer_norm`` on the channel dim
of a channels-last tensor, as in ConvNeXt) stay on the map. Two things are read off it:

* the nominal field of a layer (size, stride, offset in input pixels) for the layer
  table, by composing each op's window along the graph;
* the exact input box one output position sees, by walking the graph backwards from
  that position and dropping positions that fall into padding at every depth. This
  is what patches are cut at: near borders, padding, dilation and unused rows make
  the nominal field too large, and the walk gets it right.

The ops, their taxonomy and the local-field policy for global gates (squeeze-excitation):
:mod:`featvis.vision.receptive_graph`.

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

from featvis.core.hooks import capture, get_layer, probe_input, run_to_layers
from featvis.core.io import save_npz
from featvis.core.tokengrid import TokenGrid, split_layer
from featvis.core.tokens import token_grid
from featvis.vision.receptive_graph import (  # noqa: F401 - Field and GATE_KINDS re-exported
    GATE_KINDS,
    Field,
    GraphTracer,
    Interval,
    Node,
    describe_gates,
    hull,
    module_stack,
    window_taps,
)


class ReceptiveFields:
    """Receptive fields of named layers of ``model`` at a given input shape."""

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], layers: Iterable[str]) -> None:
        self.input_size = tuple(input_shape[-2:])
        self.layer_node: dict[str, int | None] = {}
        self.model, self.input_shape = model, tuple(input_shape)
        self._tokens: dict[str, LayerField | None] = {}
        image = probe_input(model, input_shape)
        classes = {name: type(module).__name__ for name, module in model.named_modules()}

        def make_hook(name: str):
            def hook(_module, _inputs, output) -> None:
                tensor = output[0] if isinstance(output, (tuple, list)) else output
                if name not in self.layer_node:  # a module called twice: its first call
                    self.layer_node[name] = tracer.node_of.get(id(tensor)) if isinstance(tensor, torch.Tensor) else None

            return hook

        handles = [get_layer(model, name).register_forward_hook(make_hook(name)) for name in layers]
        try:
            with module_stack(model) as stack, torch.no_grad():
                tracer = GraphTracer(image, classes, stack)
                with tracer:
                    model(image)
        finally:
            for handle in handles:
                handle.remove()
        self.nodes = tracer.nodes

    def _map_node(self, layer: str) -> Node | None:
        """The layer's node when featvis reads its output as a (B, C, H, W) map whose last two dims
        are the traced map's rows and columns; else ``None``."""
        index = self.layer_node.get(layer)
        if index is None:
            return None
        node = self.nodes[index]
        return node if node.ndim == 4 and node.axes == (2, 3) else None

    def _token_layer_field(self, layer: str) -> LayerField | None:
        if layer not in self._tokens:  # every token layer of the trace at once: one forward pass
            grids = {name: token_grid(get_layer(self.model, name)) for name in self.layer_node
                     if split_layer(name)[1] is None}
            self._tokens.update(token_fields(self.model, self.input_shape, {
                name: grid for name, grid in grids.items() if grid is not None and name not in self._tokens}))
        return self._tokens[layer]

    def _is_token_layer(self, layer: str) -> bool:
        return split_layer(layer)[1] is None and token_grid(get_layer(self.model, layer)) is not None

    def grid_size(self, layer: str) -> tuple[int, int] | None:
        """The (H, W) of a layer's map as featvis reads it; ``None`` where it is not a traced map."""
        if self._is_token_layer(layer):
            grid = token_grid(get_layer(self.model, layer))
            return grid.height, grid.width
        node = self._map_node(layer)
        return None if node is None else node.size

    def field(self, layer: str) -> Field | None:
        """Nominal field (size, stride, offset); ``None`` where it is the whole image."""
        if split_layer(layer)[1] is not None:  # a class/register token: one unit, no position on the grid
            return None
        if self._is_token_layer(layer):
            field = self._token_layer_field(layer)
            return field.nominal if field is not None and field.kind == "exact" else None
        node = self._map_node(layer)
        return None if node is None else node.field

    def kind(self, layer: str) -> str:
        """``exact``, ``local`` (through a global gate: module docstring), ``token`` or ``global``."""
        if self._is_token_layer(layer):
            return self._token_layer_field(layer).kind
        if self.field(layer) is None:
            return "global"
        return "local" if self._map_node(layer).gates else "exact"

    def reason(self, layer: str) -> str:
        """Why a field is not exact: the gates a local field treats as per-channel scales, the op
        that makes a field global; "" for an exact field."""
        kind = self.kind(layer)
        if kind == "local":
            return describe_gates(self._map_node(layer).gates)
        if kind == "token":
            return self._token_layer_field(layer).reason
        if kind == "exact":
            return ""
        if split_layer(layer)[1] is not None:
            return "a class or register token"
        if layer not in self.layer_node:
            return "the module did not run in the probe forward pass"
        index = self.layer_node[layer]
        if index is None:
            return "the output is not a tensor computed from the image"
        node = self.nodes[index]
        if node.field is not None:  # a map the trace follows, but not at dims (2, 3) of a 4-D output
            return f"the output ({node.ndim}-D, map at dims {node.axes}) is not read as a (B, C, H, W) map"
        return node.cause or "every position sees the whole image"

    def layer_field(self, layer: str) -> LayerField | None:
        """The layer's field with the exact box of every output position (``None``: global)."""
        if split_layer(layer)[1] is not None:  # a prefix token: read like a classifier's fc, whole images
            return None
        if self._is_token_layer(layer):
            return self._token_layer_field(layer)
        nominal = self.field(layer)
        if nominal is None:
            return None
        height, width = self._map_node(layer).size
        boxes = [self.box(layer, y, x) for y in range(height) for x in range(width)]
        return LayerField(nominal, self.input_size, np.array(boxes, dtype=np.int32).reshape(height, width, 4),
                          self.kind(layer), self.reason(layer))

    def box(self, layer: str, y: int, x: int) -> tuple[int, int, int, int]:
        """Input rows ``[y0, y1)`` and columns ``[x0, x1)`` that position (y, x) sees (a local
        field's box: gates are not followed)."""
        height, width = self.input_size
        node = self._map_node(layer)
        if node is None or node.field is None:
            return 0, height, 0, width
        wanted: dict[int, tuple[Interval, Interval]] = {self.layer_node[layer]: ((y, y), (x, x))}
        for index in range(self.layer_node[layer], 0, -1):  # nodes were recorded in execution order
            if index in wanted:
                self._push(self.nodes[index], wanted.pop(index), wanted)
        if 0 not in wanted:  # the position lies in padding: it sees no pixel
            return 0, 0, 0, 0
        (y0, y1), (x0, x1) = wanted[0]
        return y0, y1 + 1, x0, x1 + 1

    def _push(self, node: Node, span: tuple[Interval, Interval], wanted: dict) -> None:
        for parent in node.inputs:
            size = self.nodes[parent].size
            if node.kind == "window":
                taps = [window_taps(node.window, a, span[a], size[a]) for a in range(2)]
                request = None if None in taps else tuple(taps)
            elif node.kind == "shift":
                shifted = [(max(span[a][0] - node.shift[a], 0), min(span[a][1] - node.shift[a], size[a] - 1))
                           for a in range(2)]
                request = tuple(shifted) if all(lo <= hi for lo, hi in shifted) else None
            elif node.kind == "pointwise":
                request = span
            else:  # a global node: the walk starts only from fields, so it never gets here
                raise AssertionError(f"the walk reached a global node ({node.cause})")
            if request is not None:
                wanted[parent] = hull(wanted.get(parent), request)


@dataclass(frozen=True, eq=False)
class LayerField:
    """A layer's nominal field plus the exact clipped box of every output position."""

    nominal: Field
    input_size: tuple[int, int]
    boxes: np.ndarray  # (H, W, 4) int32: y0, y1, x0, x1 of each position of the layer's grid
    kind: str = "exact"  # "local": through global gates; "token": each token sees the whole image
    reason: str = ""  # why a field is local (the gates) or token; "" when exact

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
            arrays[f"{name}:reason"] = np.array(field.reason)
    save_npz(path, **arrays)


def load_fields(path: str | os.PathLike) -> tuple[tuple[int, ...], dict[str, LayerField | None]]:
    """The input shape the fields were traced at, and each saved layer's field (files written
    before kinds and reasons were saved read as exact fields with no reason)."""
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["input_shape"])
        fields: dict[str, LayerField | None] = {}
        for name in data["layers"].tolist():
            if f"{name}:boxes" not in data:
                fields[name] = None
                continue
            jump, lo, hi = (tuple(int(v) for v in row) for row in data[f"{name}:nominal"])
            kind = str(data[f"{name}:kind"]) if f"{name}:kind" in data else "exact"
            reason = str(data[f"{name}:reason"]) if f"{name}:reason" in data else ""
            fields[name] = LayerField(Field(jump, lo, hi), shape[-2:], data[f"{name}:boxes"], kind, reason)
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
    if outside.any():
        return LayerField(nominal, tuple(size), boxes, "token", "attention mixes the tokens: each sees the whole image")
    return LayerField(nominal, tuple(size), boxes)
