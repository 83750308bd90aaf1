"""The graph of spatial ops one probe forward pass runs, which :mod:`featvis.vision.receptive`
walks for exact receptive fields.

Every op on a tensor that depends on the input becomes a node that knows which of its
tensor's dimensions hold the map's rows and columns (``axes``; ``(2, 3)`` for NCHW, ``(1, 2)``
channels-last), so permutes, reshapes that keep H and W, and per-position channel ops
(``F.linear`` or ``F.layer_norm`` on the channel dim of a channels-last tensor, as in ConvNeXt)
stay on the map.

The op taxonomy (the tables after ``GATE_KINDS``, by op name):

* **window**: ``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``adaptive_*_pool2d`` where the
  input is a whole multiple of the output (any other adaptive pool is global);
* **shift**: constant ``pad`` and slicing crops (``x[..., 1:, :-1]``, ``narrow``);
* **position-wise**: element-wise ops and joins (``add``, ``mul``, activations, ``where``,
  ``cat``/``stack``/``split`` along channels), eval-mode ``batch_norm``, channel-only
  ``layer_norm``/``softmax``/``linear``/reductions, and layout ops (``permute``,
  ``transpose``, ``reshape``/``view``/``flatten``/``squeeze`` while H and W stay axes);
* **global**, every position sees every input pixel: reductions over H or W (``mean``,
  ``adaptive_avg_pool2d`` to 1x1), norms whose statistics span the map (``group_norm``,
  ``instance_norm``, ``layer_norm`` over H or W, training-mode ``batch_norm``), a
  ``softmax`` over H or W, ``roll``, ``flip``, resampling (``interpolate``,
  ``grid_sample``, pixel shuffles), attention, and **every op not in the taxonomy**:
  for an op we cannot map, the whole image is the honest answer. A global layer's
  :meth:`ReceptiveFields.reason` names the op that made it so.

**Global gates (the local-field policy).** Squeeze-excitation and attention pooling
multiply (or shift) a map by a (1, 1)-sized tensor pooled from the whole map, so strictly
every later position sees the whole image. Such a (1, 1) broadcast input of an element-wise
op is taken as a *per-channel scale*: the walk does not follow it, and the field is the
local one the convolutions give. A layer whose field passed through such a gate has kind
``local`` (not ``exact``), with a reason naming the gate ("squeeze-excitation gate in
features.1.0.block.1 treated as a per-channel scale"); the tests check it against the input
gradient with the gates detached, and that the gradient without detaching reaches every
pixel. Kinds: ``exact``, ``local``, ``token`` (transformer token layers,
:func:`token_fields`) and ``global`` (no field: patches are whole images).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

Interval = tuple[int, int]  # inclusive [first, last]
Axes = tuple[int, int]  # the tensor dims that hold the map's rows and columns

# Module classes whose (1, 1) output gates a map, and what to call the gate in a reason.
# Add a class name here to name your own; any other (1, 1) gate is a "global gate".
GATE_KINDS: dict[str, str] = {
    "SqueezeExcitation": "squeeze-excitation",  # torchvision
    "SqueezeExcite": "squeeze-excitation",  # timm EfficientNet/MobileNet
    "SEModule": "squeeze-excitation",  # timm ResNet/RegNet
    "EffectiveSEModule": "squeeze-excitation",
    "EcaModule": "efficient-channel-attention",
    "CecaModule": "efficient-channel-attention",
    "GlobalContext": "global-context",
    "GatherExcite": "gather-excite",
    "CbamModule": "channel-attention",
    "ChannelAttn": "channel-attention",
}


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
class Node:
    """One traced tensor. ``inputs`` are the parents the backward walk follows: for a window,
    shift or position-wise node the same or a windowed span, for a global node all of them."""

    kind: str  # input | window | shift | pointwise | global
    inputs: tuple[int, ...]
    axes: Axes | None  # None: the tensor has no map axes (a vector, tokens, or a layout we lost)
    size: tuple[int, int] | None  # the map's (H, W) at ``axes``
    ndim: int
    field: Field | None  # None: every position sees the whole input
    window: _Window | None = None
    shift: tuple[int, int] = (0, 0)  # shift: rows/cols added before the start (negative: cropped)
    gates: tuple[str, ...] = ()  # the (1, 1) gates the field passed through, as "<kind> gate in <module>"
    cause: str = ""  # global: the op that made it so
    module: str = ""  # the innermost module running when it was made
    uniform: frozenset[int] = frozenset()  # dims along which the values repeat (expanded from size 1)


def _pair(value) -> tuple[int, int]:
    return (int(value[0]), int(value[-1])) if isinstance(value, (tuple, list)) else (int(value), int(value))


def _arg(args: tuple, kwargs: dict, index: int, name: str, default=None):
    return args[index] if len(args) > index else kwargs.get(name, default)


def _dims(value, ndim: int) -> tuple[int, ...] | None:
    """A ``dim`` argument as non-negative ints (``None``: all dims)."""
    if value is None:
        return None
    values = value if isinstance(value, (tuple, list, torch.Size)) else (value,)
    return tuple(int(v) % ndim for v in values) if ndim else ()


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


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(g for group in groups for g in group))


# --- the op taxonomy -------------------------------------------------------------------

_WINDOW = {"conv2d", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
_POINTWISE = {
    # arithmetic and comparisons (dunders and in-place forms are named by their plain op)
    "add", "sub", "rsub", "mul", "div", "truediv", "true_divide", "floordiv", "floor_divide", "remainder", "mod",
    "fmod", "pow", "neg", "pos", "abs", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt",
    "square", "reciprocal", "sign", "sgn", "erf", "erfc", "sin", "cos", "tan", "atan", "atan2", "floor", "ceil",
    "round", "trunc", "frac", "clamp", "clamp_min", "clamp_max", "clip", "maximum", "minimum", "fmax", "fmin",
    "where", "lerp", "addcmul", "addcdiv", "hypot", "masked_fill", "nan_to_num", "logit", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "logical_not", "logical_xor", "and", "or", "xor", "invert",
    "isnan", "isinf", "isfinite", "signbit",
    # activations and dropout (dropout2d drops whole channels: still no position mixing)
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
    "hardtanh", "sigmoid", "tanh", "softplus", "softsign", "tanhshrink", "threshold", "logsigmoid", "prelu",
    "rrelu", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
    # channel-only normalisation
    "local_response_norm",
    # copies, casts, broadcasts
    "contiguous", "clone", "detach", "to", "type", "type_as", "float", "double", "half", "bfloat16", "cpu", "cuda",
    "requires_grad", "alias",
}
_EXPAND = {"expand", "expand_as", "broadcast_to"}  # a (1, 1) gate expanded over the map is still a gate
_LAYOUT = {"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis", "t"}
_RESHAPE = {"reshape", "view", "flatten", "unflatten", "squeeze", "unsqueeze", "view_as", "reshape_as"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "std", "var", "norm", "logsumexp", "prod", "nansum",
               "nanmean", "median", "argmax", "argmin", "std_mean", "var_mean", "all", "any", "count_nonzero"}
_SPLITS = {"chunk": 2, "split": 2, "tensor_split": 2, "split_with_sizes": 2, "unbind": 1, "select": 1}
_JOINS = {"cat", "concat", "concatenate", "stack"}
_LAST_DIM = {"linear", "matmul"}
_SPATIAL_NORMS = {"layer_norm", "rms_norm"}  # normalised over the last len(normalized_shape) dims
_SOFTMAX = {"softmax", "log_softmax", "softmin"}
_CONSTANTS = {"zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like", "randint_like",
              "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"}  # no dependence on the values
# Known to mix positions (listed so a reason can say so; unknown ops are global too).
_MIXING = {"group_norm", "instance_norm", "roll", "flip", "fliplr", "flipud", "rot90", "interpolate", "upsample",
           "upsample_nearest", "upsample_bilinear", "grid_sample", "pixel_shuffle", "pixel_unshuffle", "unfold",
           "fold", "scaled_dot_product_attention", "conv_transpose2d", "einsum", "bmm", "baddbmm", "cumsum",
           "cumprod", "sort", "topk", "gather", "scatter", "index_select", "take", "conv1d", "conv3d"}
_LIKE_OTHER = {"expand_as", "type_as", "view_as", "reshape_as"}  # the second tensor lends only its shape
_DUNDER_REFLECTED = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor"}


def _op_name(func: Callable) -> str:
    """``add`` for ``torch.add``, ``Tensor.add_``, ``__add__``, ``__radd__`` and ``__iadd__``."""
    name = getattr(func, "__name__", "")
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        if name[:1] in ("r", "i") and name[1:] in _DUNDER_REFLECTED:  # all element-wise, either way round
            name = name[1:]
    return name.strip("_")


@dataclass(frozen=True)
class _Op:
    """One call being recorded: its function, plain name, arguments, and first argument when traced."""

    func: Callable
    name: str
    args: tuple
    kwargs: dict
    first: torch.Tensor | None

    def arg(self, index: int, name: str, default=None):
        return _arg(self.args, self.kwargs, index, name, default)

    def dim(self, index: int, default=0) -> tuple[int, ...] | None:
        """The ``dim`` argument as non-negative ints; ``None`` (or an empty tuple): every dim."""
        return _dims(self.arg(index, "dim", default), self.first.ndim) or None

    @property
    def last_two(self) -> Axes:
        return (self.first.ndim - 2, self.first.ndim - 1)

    def on_meta(self, sizes: list[int]) -> list[int] | None:
        """The output shape of this op on a meta tensor of ``sizes`` in place of its first argument."""
        try:
            out = self.func(torch.empty(sizes, device="meta"), *self.args[1:], **self.kwargs)
        except (RuntimeError, TypeError, ValueError, IndexError):
            return None
        return list(out.shape) if isinstance(out, torch.Tensor) else None


class GraphTracer(TorchFunctionMode):
    """Records the ops of one forward pass that read the input as a graph of ``Node``s."""

    def __init__(self, image: torch.Tensor, classes: Mapping[str, str], module_stack: list[str]) -> None:
        super().__init__()
        axes = (image.ndim - 2, image.ndim - 1)
        self.nodes = [Node("input", (), axes, tuple(image.shape[-2:]), image.ndim, IDENTITY)]
        self.node_of = {id(image): 0}
        self._alive = [image]  # keeps tensor ids unique while tracing
        self.classes, self.stack = classes, module_stack
        self.gate_order: dict[str, int] = {}  # gates in the order the forward pass applies them

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        leaves = tree_flatten((args, kwargs))[0]
        sources = [t for t in leaves if isinstance(t, torch.Tensor) and id(t) in self.node_of]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        name = _op_name(func)
        if name in _LIKE_OTHER:  # the other tensor gives only a shape or dtype
            sources = [t for t in sources if args and t is args[0]]
        if name == "setitem" and sources:  # writes into its first argument, traced or not, and returns None
            outputs, args = [args[0]], (None, *args[1:])  # no first argument to map: global
        if sources and outputs and name not in _CONSTANTS:
            first = args[0] if args and isinstance(args[0], torch.Tensor) and id(args[0]) in self.node_of else None
            node = self._node(_Op(func, name, args, kwargs, first), sources, outputs[0])
            node.module = self.module
            self.nodes.append(node)
            for tensor in outputs:
                self.node_of[id(tensor)] = len(self.nodes) - 1
                self._alive.append(tensor)
        return out

    # --- node builders -------------------------------------------------------------------

    @property
    def module(self) -> str:
        return self.stack[-1] if self.stack else ""

    def _where(self, name: str) -> str:
        return f"{name} in {self.module}" if self.module else f"{name} in the model's forward"

    def _global(self, ids: Iterable[int], out: torch.Tensor, axes: Axes | None, cause: str) -> Node:
        """A node every position of which sees all of its inputs; ``cause`` unless a parent was global first."""
        ids = tuple(ids)
        inherited = next((self.nodes[i].cause for i in ids if self.nodes[i].field is None and self.nodes[i].cause), "")
        size = tuple(out.shape[a] for a in axes) if axes is not None else None
        return Node("global", ids, axes, size, out.ndim, None, cause=inherited or cause)

    def _follow(self, kind: str, parents: tuple[int, ...], out: torch.Tensor, axes: Axes, field: Field | None,
                gates: Iterable[str] = (), **extra) -> Node:
        """A node whose positions see their parents' positions (or windows of them)."""
        if field is None and not any(self.nodes[i].field is None for i in parents):
            return self._global(parents, out, axes, self._where("a join of maps of different strides"))
        if field is None:
            return self._global(parents, out, axes, "")
        size = tuple(out.shape[a] for a in axes)
        for gate in gates:
            self.gate_order.setdefault(gate, len(self.gate_order))
        merged = sorted(_merge(gates, *(self.nodes[i].gates for i in parents)), key=self.gate_order.__getitem__)
        return Node(kind, parents, axes, size, out.ndim, field, gates=tuple(merged), **extra)

    def _node(self, op: _Op, sources: list[torch.Tensor], out: torch.Tensor) -> Node:
        ids = tuple(dict.fromkeys(self.node_of[id(t)] for t in sources))
        if op.name in _JOINS:
            return self._join(op, sources, out)
        if op.name in _POINTWISE or (op.name in ("max", "min") and len(sources) > 1):
            return self._pointwise(op.name, sources, out)
        if op.name in _EXPAND and op.first is not None:
            return self._expand(op, out)
        if op.name == "setitem":
            return self._global(ids, out, None, f"{self._where(op.name)} writes into a tensor, so taken as global")
        if op.first is None or len(ids) > 1:
            return self._global(ids, out, None, self._where(f"{op.name} of several maps"))
        parent = self.nodes[ids[0]]
        builder = self.BUILDERS.get(op.name)
        if parent.axes is None or builder is None:  # nothing to map, or an op we cannot map
            reason = "mixes positions" if op.name in _MIXING else "is not mapped, so taken as global"
            return self._global(ids, out, None, f"{self._where(op.name)} {reason}")
        return builder(self, op, parent, ids[0], out)

    def _pointwise(self, name: str, sources, out: torch.Tensor) -> Node:
        """Element-wise ops with broadcasting. Inputs on the output's map are followed position by
        position; a (1, 1)-sized input broadcast over the map is a gate (module docstring)."""
        axes = next((self._aligned(t, out) for t in sources if self._aligned(t, out) is not None), None)
        ids = [self.node_of[id(t)] for t in sources]
        if axes is None:
            return self._global(ids, out, None, self._where(f"{name} of tensors without map axes"))
        grid = tuple(out.shape[a] for a in axes)
        full, gates = [], []
        for tensor, index in zip(sources, ids):
            if self._aligned(tensor, out) == axes:
                full.append(index)
            elif grid != (1, 1) and self._repeats_over(tensor, out, axes):
                gates.append(self._gate_name(self.nodes[index]))
            else:
                return self._global(ids, out, axes, self._where(f"{name} broadcasting along one map axis"))
        if not full:
            return self._global(ids, out, axes, self._where(f"{name} broadcasting a (1, 1) map"))
        full = tuple(dict.fromkeys(full))
        return self._follow("pointwise", full, out, axes, _union([self.nodes[i].field for i in full]), gates)

    def _aligned(self, tensor: torch.Tensor, out: torch.Tensor) -> Axes | None:
        """Where ``tensor``'s map axes land in ``out`` under broadcasting, if it is the whole map there."""
        node = self.nodes[self.node_of[id(tensor)]]
        if node.axes is None:
            return None
        offset = out.ndim - tensor.ndim
        axes = (node.axes[0] + offset, node.axes[1] + offset)
        return axes if tuple(out.shape[a] for a in axes) == node.size else None

    def _repeats_over(self, tensor: torch.Tensor, out: torch.Tensor, axes: Axes) -> bool:
        """Whether ``tensor`` has one value for the whole map at the output's ``axes``: size 1 (or no
        dim) there under broadcasting, or expanded from size 1."""
        offset = out.ndim - tensor.ndim
        uniform = self.nodes[self.node_of[id(tensor)]].uniform
        return all(a - offset < 0 or tensor.shape[a - offset] == 1 or a - offset in uniform for a in axes)

    def _expand(self, op: _Op, out: torch.Tensor) -> Node:
        """``expand``: the map as it was where it is not expanded; else a tensor that repeats along the
        expanded dims (a gate expanded to the map's size, as ECA does, is still a gate)."""
        index = self.node_of[id(op.first)]
        if self._aligned(op.first, out) is not None:
            return self._shifted(index, out, self._aligned(op.first, out))
        offset = out.ndim - op.first.ndim
        parent = self.nodes[index]
        uniform = {d for d in range(out.ndim) if d < offset or op.first.shape[d - offset] == 1 < out.shape[d]}
        node = self._global((index,), out, None, self._where(f"{op.name} of a global tensor"))
        node.uniform = frozenset(uniform | {d + offset for d in parent.uniform})
        return node

    def _gate_name(self, gate: Node) -> str:
        """'<kind> gate in <module>': the innermost module around the gate's op, or the op's own, that
        is a known gate (GATE_KINDS); else the module where the gate is applied."""
        parts = gate.module.split(".") if gate.module else []
        for depth in range(len(parts), 0, -1):
            name = ".".join(parts[:depth])
            kind = GATE_KINDS.get(self.classes.get(name, ""))
            if kind:
                return f"{kind} gate in {name}"
        here = self.module
        return f"global gate in {here} ({self.classes.get(here, '')})" if here else "global gate in the model's forward"

    def _join(self, op: _Op, sources: list[torch.Tensor], out: torch.Tensor) -> Node:
        """``cat``/``stack``: position-wise when the inputs share the map and the joined dim is not H or W."""
        ids = tuple(dict.fromkeys(self.node_of[id(t)] for t in sources))
        name, inserted = op.name, int(op.name == "stack")
        dim = _dims(op.arg(1, "dim", 0), out.ndim if inserted else sources[0].ndim)[0]
        axes = set()
        for tensor in sources:
            node = self.nodes[self.node_of[id(tensor)]]
            if node.axes is None:
                return self._global(ids, out, None, self._where(f"{name} of tensors without map axes"))
            if not inserted and dim in node.axes:
                return self._global(ids, out, None, self._where(f"{name} along a map axis"))
            axes.add(tuple(a + inserted if inserted and a >= dim else a for a in node.axes))
        if len(axes) != 1 or len({self.nodes[i].size for i in ids}) != 1:
            return self._global(ids, out, None, self._where(f"{name} of different maps"))
        axes = axes.pop()
        return self._follow("pointwise", ids, out, axes, _union([self.nodes[i].field for i in ids]))

    # --- single-input ops, by kind: each gets the op, its input's node (and index) and its output

    def _window(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        if parent.axes != op.last_two:  # a window over other dims than H and W
            return self._global((index,), out, None, self._where(f"{op.name} over dims other than the map's"))
        window = _conv_window(op.args, op.kwargs) if op.name == "conv2d" else _pool_window(op.name, op.args, op.kwargs)
        return self._follow("window", (index,), out, (out.ndim - 2, out.ndim - 1),
                            _compose_window(parent.field, window), window=window)

    def _adaptive(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        """An adaptive pool is a plain window where the input is a whole multiple of the output."""
        if parent.axes != op.last_two:
            return self._global((index,), out, None, self._where(f"{op.name} over dims other than the map's"))
        size_in, size_out, axes = parent.size, tuple(out.shape[-2:]), (out.ndim - 2, out.ndim - 1)
        if size_out != (1, 1) and all(size_in[a] % size_out[a] == 0 for a in range(2)):
            step = tuple(size_in[a] // size_out[a] for a in range(2))
            window = _Window(step, step, (0, 0), (1, 1))
            return self._follow("window", (index,), out, axes, _compose_window(parent.field, window), window=window)
        what = "pools the whole map" if size_out == (1, 1) else f"resamples {size_in} to {size_out}"
        return self._global((index,), out, axes, f"{self._where(op.name)} {what}")

    def _shifted(self, index: int, out: torch.Tensor, axes: Axes, shift: tuple[int, int] = (0, 0)) -> Node:
        """The parent's map at ``axes`` of ``out``, moved by ``shift`` (rows and columns added before
        the start; 0 for a layout change, negative for a crop)."""
        field = _compose_shift(self.nodes[index].field, shift)
        return self._follow("shift", (index,), out, axes, field, shift=shift)

    def _pad(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        mode = op.arg(2, "mode", "constant")
        if mode != "constant":  # reflect/replicate/circular read other positions near the border
            return self._global((index,), out, None, f"{self._where(op.name)} in {mode} mode is not mapped")
        pad = list(op.arg(1, "pad"))
        before = []
        for axis in parent.axes:
            j = op.first.ndim - 1 - axis  # pad pairs run from the last dim backwards
            before.append(int(pad[2 * j]) if 2 * j < len(pad) else 0)
        return self._shifted(index, out, parent.axes, tuple(before))

    def _getitem(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        """Basic indexing: ints and slices on other dims, step-1 slices (crops) on H and W."""
        key = op.args[1] if isinstance(op.args[1], tuple) else (op.args[1],)
        if any(not (k is None or k is Ellipsis or isinstance(k, slice) or type(k) is int) for k in key):
            return self._global((index,), out, None, self._where("advanced indexing"))
        rest = (slice(None),) * (op.first.ndim - sum(1 for k in key if k is not None and k is not Ellipsis))
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + rest + key[at + 1:]
        else:
            key = key + rest
        axes, shift, dim_in, dim_out = {}, {}, 0, 0
        for k in key:
            if k is None:
                dim_out += 1
                continue
            if dim_in in parent.axes:
                if not isinstance(k, slice) or k.indices(op.first.shape[dim_in])[2] != 1:
                    return self._global((index,), out, None, self._where("indexing a map axis"))
                axes[dim_in], shift[dim_in] = dim_out, -k.indices(op.first.shape[dim_in])[0]
            dim_in += 1
            dim_out += isinstance(k, slice)
        return self._shifted(index, out, tuple(axes[a] for a in parent.axes), tuple(shift[a] for a in parent.axes))

    def _narrow(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        dim = op.dim(1)[0]
        start = int(op.arg(2, "start")) % max(op.first.shape[dim], 1)
        return self._shifted(index, out, parent.axes, tuple(-start if axis == dim else 0 for axis in parent.axes))

    def _layout(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        """A permutation of dims: where each dim went, read off the same op on a meta tensor with
        distinct sizes (so equal sizes, e.g. a square map, cannot be confused)."""
        sizes = _DISTINCT[: op.first.ndim]
        moved = op.on_meta(sizes)
        if moved is None or sorted(moved) != sorted(sizes):
            return self._global((index,), out, None, self._where(f"{op.name} (a layout not mapped)"))
        return self._shifted(index, out, tuple(moved.index(sizes[a]) for a in parent.axes))

    def _reshape(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        """A reshape keeps H (or W) as a dim when the elements before it and its size are unchanged."""
        axes = _kept_axes(tuple(op.first.shape), tuple(out.shape), parent.axes)
        if axes is None:
            return self._global((index,), out, None, self._where(f"{op.name} merging the map's axes"))
        return self._shifted(index, out, axes)

    def _reduce(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        dims = op.dim(2 if op.name == "norm" else 1, None)
        keepdim = out.ndim == op.first.ndim
        if dims is None or set(dims) & set(parent.axes):
            axes = parent.axes if keepdim else None  # keepdim: a (1, 1) map, as squeeze-excitation pools it
            return self._global((index,), out, axes, f"{self._where(op.name)} pools the whole map")
        return self._shifted(index, out, _drop(parent.axes, dims, keepdim))

    def _split(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        dims = op.dim(_SPLITS[op.name], 0)
        if set(dims) & set(parent.axes):
            return self._global((index,), out, None, self._where(f"{op.name} along a map axis"))
        return self._shifted(index, out, _drop(parent.axes, dims, out.ndim == op.first.ndim))

    def _last_dim(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        """``linear`` (and ``matmul`` by a weight) acts on the last dim: per position unless it is W."""
        weight = op.arg(1, "weight" if op.name == "linear" else "other")
        if op.first.ndim - 1 in parent.axes or not isinstance(weight, torch.Tensor) or weight.ndim > 2:
            return self._global((index,), out, None, self._where(f"{op.name} over a map axis"))
        return self._shifted(index, out, parent.axes)  # a 1-D weight drops the last dim, after the map's

    def _norm(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        shape = op.arg(1, "normalized_shape")
        count = len(shape) if isinstance(shape, (tuple, list, torch.Size)) else 1
        if set(range(op.first.ndim - count, op.first.ndim)) & set(parent.axes):
            return self._global((index,), out, parent.axes, f"{self._where(op.name)} over the map mixes positions")
        return self._shifted(index, out, parent.axes)

    def _batch_norm(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        if op.arg(5, "training", False) or op.arg(1, "running_mean") is None:
            return self._global((index,), out, parent.axes,
                                f"{self._where(op.name)} with batch statistics mixes positions")
        return self._shifted(index, out, parent.axes)

    def _softmax(self, op: _Op, parent: Node, index: int, out: torch.Tensor) -> Node:
        dims = op.dim(1, None)
        if dims is None or set(dims) & set(parent.axes):
            return self._global((index,), out, parent.axes, f"{self._where(op.name)} over the map mixes positions")
        return self._shifted(index, out, parent.axes)


_DISTINCT = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53]  # dim sizes that cannot be confused
GraphTracer.BUILDERS = {
    **dict.fromkeys(_WINDOW, GraphTracer._window), **dict.fromkeys(_ADAPTIVE, GraphTracer._adaptive),
    "pad": GraphTracer._pad, "getitem": GraphTracer._getitem, "narrow": GraphTracer._narrow,
    **dict.fromkeys(_LAYOUT, GraphTracer._layout), **dict.fromkeys(_RESHAPE, GraphTracer._reshape),
    **dict.fromkeys(_REDUCTIONS, GraphTracer._reduce), **dict.fromkeys(_SPLITS, GraphTracer._split),
    **dict.fromkeys(_LAST_DIM, GraphTracer._last_dim), **dict.fromkeys(_SPATIAL_NORMS, GraphTracer._norm),
    "batch_norm": GraphTracer._batch_norm, **dict.fromkeys(_SOFTMAX, GraphTracer._softmax),
}


def _kept_axes(shape_in: tuple[int, ...], shape_out: tuple[int, ...], axes: Axes) -> Axes | None:
    """Where a row-major reshape puts dims ``axes`` of ``shape_in``, if each stays one dim."""
    found = []
    for axis in axes:
        before = math.prod(shape_in[:axis])
        start = found[-1] + 1 if found else 0
        match = next((j for j in range(start, len(shape_out))
                      if math.prod(shape_out[:j]) == before and shape_out[j] == shape_in[axis]), None)
        if match is None:
            return None
        found.append(match)
    return tuple(found)


def _drop(axes: Axes, dims: Iterable[int], keepdim: bool) -> Axes:
    """``axes`` after removing ``dims`` (unless kept as size 1)."""
    if keepdim:
        return axes
    dims = set(dims)
    return tuple(a - sum(1 for d in dims if d < a) for a in axes)


def window_taps(w: _Window, axis: int, positions: Interval, n_in: int) -> Interval | None:
    """First and last valid input position read by output positions in ``positions``."""
    k, s, p, d = w.kernel[axis], w.stride[axis], w.padding[axis], w.dilation[axis]

    def valid(r: int) -> list[int]:
        return [t for t in range(s * r - p, s * r - p + d * (k - 1) + 1, d) if 0 <= t < n_in]

    first = next((min(v) for r in range(positions[0], positions[1] + 1) if (v := valid(r))), None)
    last = next((max(v) for r in range(positions[1], positions[0] - 1, -1) if (v := valid(r))), None)
    return None if first is None else (first, last)


def hull(a: tuple[Interval, Interval] | None, b: tuple[Interval, Interval]) -> tuple[Interval, Interval]:
    if a is None:
        return b
    return tuple((min(a[i][0], b[i][0]), max(a[i][1], b[i][1])) for i in range(2))


@contextlib.contextmanager
def module_stack(model: nn.Module) -> Iterator[list[str]]:
    """The names of the modules running at each moment of a forward pass, innermost last."""
    stack: list[str] = []

    def enter(name: str) -> Callable:
        def hook(_module, _inputs) -> None:
            stack.append(name)

        return hook

    def leave(_module, _inputs, _output) -> None:  # returning a value would replace the output
        stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        yield stack
    finally:
        for handle in handles:
            handle.remove()


def describe_gates(gates: tuple[str, ...]) -> str:
    """A local field's reason: the gates it treats as per-channel scales."""
    if len(gates) == 1:
        return f"{gates[0]} treated as a per-channel scale"
    more = len(gates) - 1
    return f"{gates[0]} and {more} more {'gate' if more == 1 else 'gates'} treated as per-channel scales"
