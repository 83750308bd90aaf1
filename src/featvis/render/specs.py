"""Objective specs: plain config values -> :class:`~featvis.render.objectives.Objective`.

A spec is a mapping with exactly one *kind* key, whose value holds that kind's
arguments, plus an optional ``weight`` (1 when absent; a negative weight minimises)::

    {channel: {layer: _blocks.10, channel: 3}}
    {weight: -0.5, neuron: {layer: _blocks.10, channel: 5, y: 2, x: 2}}
    {sum: [{channel: {layer: _blocks.10, channel: 3}}, {weight: -0.5, layer: {layer: _blocks.10}}]}
    {negate: {class_logit: {class: espresso}}}

Kinds are a registry: ``@register_spec(name)`` files a builder ``(args, ctx, where) ->
Objective`` that gets the kind's arguments, a :class:`SpecContext` (the model, its
class names, its layers' widths, the default layer, where the features stage's files
are) and ``where``, the spec's place in the config for error messages. Builders check
everything they can before a render starts: layers, channel and class indices, files,
vector lengths, class names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from featvis.core.hooks import UnknownLayerError, resolve_layer
from featvis.core.names import unknown
from featvis.core.probe import probe_input
from featvis.core.registry import registrar
from featvis.core.tokengrid import split_layer
from featvis.core.tokens import layer_output
from featvis.render import objectives as obj
from featvis.render.objectives import Acts, ChannelOutOfRangeError, Objective

if TYPE_CHECKING:
    from featvis.vision.models import LoadedModel

SpecBuilder = Callable[[Any, "SpecContext", str], Objective]
SPECS: dict[str, SpecBuilder] = {}
register_spec = registrar(SPECS, "Add an objective kind: a builder ``(args, ctx, where) -> Objective``.")

# (dataset, layer) -> (the features stage's mean.npy, the dataset's manifest.csv)
FeatureFiles = Callable[[str, str], tuple[str | os.PathLike, str | os.PathLike]]

ITEM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # item names become file names


class SpecError(ValueError):
    """A spec that cannot become an objective; the message says where it is in the config."""


class UnknownNameError(KeyError):
    """An unknown kind, class name or dataset label; the message lists the closest known names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass
class SpecContext:
    """What specs are built against: the model, its classes, the default layer, and files."""

    model: nn.Module
    in_channels: int = 3
    image_size: int | tuple[int, int] = 224  # probe size: layer widths and the output layer come from one forward
    class_names: Sequence[str] = ()
    layer: str | None = None  # the layer of specs that name none (a job's `layer`)
    features: FeatureFiles | None = None  # needed only by directions from classes
    _shapes: dict[str, tuple[int, ...]] | None = field(default=None, init=False, repr=False)
    _output: str | None = field(default=None, init=False, repr=False)

    @classmethod
    def for_model(cls, loaded: LoadedModel, layer: str | None = None,
                  features: FeatureFiles | None = None) -> SpecContext:
        """A context for a loaded model: its module, input channels and size, class names."""
        pre = loaded.preprocess
        return cls(loaded.module, pre.channels, pre.image_size, tuple(pre.class_names), layer, features)

    def layer_of(self, args: Mapping[str, Any], where: str) -> str:
        """The spec's own ``layer``, else the context's default; checked against the model."""
        name = args.get("layer", self.layer)
        if name is None:
            raise SpecError(f"{where}: no layer: give `layer:` here or in the job")
        self.shape(name, where)
        return name

    def shape(self, layer: str, where: str) -> tuple[int, ...]:
        """The layer's output shape without the batch axis, from a probe forward pass."""
        try:
            _, token = resolve_layer(self.model, layer)
        except UnknownLayerError as err:
            raise UnknownLayerError(f"{where}: {err}") from None
        self._probe()
        module = split_layer(layer)[0]
        if module not in self._shapes:
            raise SpecError(f"{where}: layer {layer!r} gives no tensor output in a forward pass")
        shape = self._shapes[module]
        return shape if token is None else shape[:1]  # a class/register token: (channels,)

    def width(self, layer: str, where: str) -> int:
        """Channels (or classes) of a layer: axis 1 of its output."""
        return self.shape(layer, where)[0]

    def output_layer(self, where: str) -> str:
        """The module whose output is the model's output (the logits of a classifier)."""
        self._probe()
        if self._output is None:
            raise SpecError(f"{where}: no module's output is the model's output; give `layer:` (the logits)")
        return self._output

    def _probe(self) -> None:
        if self._shapes is not None:
            return
        shapes, outputs = {}, []

        def make_hook(name: str) -> Callable:
            def hook(module: nn.Module, _inputs: tuple, output: Any) -> None:
                if isinstance(output, torch.Tensor) and name not in shapes:
                    shapes[name] = tuple(layer_output(module, output).shape[1:])  # a token layer: (C, H, W)
                    outputs.append((name, output))

            return hook

        handles = [m.register_forward_hook(make_hook(n)) for n, m in self.model.named_modules() if n]
        modes = {module: module.training for module in self.model.modules()}  # a probe must not touch BatchNorm
        try:
            with torch.no_grad():
                side = self.image_size
                size = (side, side) if isinstance(side, int) else tuple(side)
                result = self.model.eval()(probe_input(self.model, (1, self.in_channels, *size)))
        finally:
            for module, training in modes.items():
                module.train(training)
            for handle in handles:
                handle.remove()
        # hooks fire innermost first: the last module that returned the result is the outermost one
        self._output = next((name for name, out in reversed(outputs) if out is result), None)
        self._shapes = shapes


def build_objective(spec: Any, ctx: SpecContext, where: str = "objective") -> Objective:
    """One spec (a kind key with its arguments, optional ``weight``) as an objective."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"{where}: an objective spec is a mapping like {{channel: {{layer: ..., channel: 3}}}}, "
                        f"got {spec!r}")
    kinds = [key for key in spec if key != "weight"]
    if len(kinds) != 1:
        raise SpecError(f"{where}: a spec has exactly one kind key (and optionally `weight`), got "
                        f"{kinds or 'none'}; kinds: {', '.join(sorted(SPECS))}")
    kind = kinds[0]
    if kind not in SPECS:
        raise UnknownNameError(f"{where}: {unknown('objective kind', kind, SPECS)}; kinds: {', '.join(sorted(SPECS))}")
    objective = SPECS[kind](spec[kind], ctx, f"{where}.{kind}")
    weight = spec.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise SpecError(f"{where}.weight: a number, got {weight!r}")
    return objective if weight == 1 else float(weight) * objective


def build_objectives(items: Mapping[str, Any], ctx: SpecContext, where: str = "objectives") -> dict[str, Objective]:
    """Item name -> objective for a job's ``objectives:`` mapping; names become file names."""
    if not isinstance(items, Mapping) or not items:
        raise SpecError(f"{where}: a non-empty mapping of item name -> objective spec, got {items!r}")
    for name in items:
        if not isinstance(name, str) or not ITEM_NAME.fullmatch(name):
            raise SpecError(f"{where}: item name {name!r} must be letters, digits, '_', '.', '-' (it names a file)")
    return {name: build_objective(spec, ctx, f"{where}.{name}") for name, spec in items.items()}


# --- helpers for builders ---------------------------------------------------------


def spec_args(args: Any, where: str, required: Sequence[str] = (), optional: Sequence[str] = ()) -> dict[str, Any]:
    """A kind's arguments as a dict, with missing and unknown keys reported by name."""
    if args is None and not required:
        return {}
    known = [*required, *optional]
    if not isinstance(args, Mapping):
        raise SpecError(f"{where}: takes a mapping of arguments ({', '.join(known)}), got {args!r}")
    missing = [key for key in required if key not in args]
    unknown = [str(key) for key in args if key not in known]
    problems = [f"missing {', '.join(missing)}"] if missing else []
    problems += [f"unknown argument(s) {', '.join(unknown)}"] if unknown else []
    if problems:
        raise SpecError(f"{where}: {'; '.join(problems)} (arguments: {', '.join(known)})")
    return dict(args)


def index_in(ctx: SpecContext, layer: str, value: Any, where: str, what: str = "channel") -> int:
    """``value`` as a channel (or class) index of ``layer``, checked against its width."""
    width = ctx.width(layer, where)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < width:
        plural = "classes" if what == "class" else f"{what}s"
        raise ChannelOutOfRangeError(f"{where}: {what} {value!r} is out of range for layer {layer!r}, which has "
                                     f"{width} {plural} (valid: 0..{width - 1})")
    return value


def class_index(ctx: SpecContext, value: Any, where: str) -> int:
    """A class given by index, or by name from the model's class names."""
    if not isinstance(value, str):
        return value
    names = list(ctx.class_names)
    if value in names:
        return names.index(value)
    folded = [n.lower() for n in names]
    if folded.count(value.lower()) == 1:
        return folded.index(value.lower())
    if not names:
        raise SpecError(f"{where}: the model has no class names (set `class_names` in its models entry); "
                        f"give the class {value!r} as an index")
    raise UnknownNameError(f"{where}: {unknown('class', value, names)} among the model's class names")


def _with_check(objective: Objective, check: Callable[[Acts], None]) -> Objective:
    return Objective(objective.fn, objective.layers, objective.name, objective.checks + (check,))


# --- the built-in kinds -------------------------------------------------------------


@register_spec("channel")
def _channel(args: Any, ctx: SpecContext, where: str) -> Objective:
    """Mean activation of one channel over the layer's grid."""
    args = spec_args(args, where, ["channel"], ["layer"])
    layer = ctx.layer_of(args, where)
    return obj.channel(layer, index_in(ctx, layer, args["channel"], where))


@register_spec("neuron")
def _neuron(args: Any, ctx: SpecContext, where: str) -> Objective:
    """One channel at one position (y, x) of the layer's grid; the centre when not given."""
    args = spec_args(args, where, ["channel"], ["layer", "y", "x"])
    layer = ctx.layer_of(args, where)
    channel = index_in(ctx, layer, args["channel"], where)
    if len(ctx.shape(layer, where)) != 3:
        raise SpecError(f"{where}: layer {layer!r} has no spatial grid (output {ctx.shape(layer, where)}); "
                        "use `channel`")
    y, x = args.get("y"), args.get("x")
    for key, value in (("y", y), ("x", x)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise SpecError(f"{where}.{key}: a non-negative integer, got {value!r}")

    def check(acts: Acts) -> None:  # the grid's size depends on the render size: checked at step 1
        height, width = acts[layer].shape[-2:]
        if (y is not None and y >= height) or (x is not None and x >= width):
            raise SpecError(f"{where}: position (y={y}, x={x}) is outside the {height} x {width} grid of layer "
                            f"{layer!r} at this render size")

    return _with_check(obj.neuron(layer, channel, x=x, y=y), check)


@register_spec("layer")
def _layer(args: Any, ctx: SpecContext, where: str) -> Objective:
    """DeepDream: mean squared activation of the whole layer."""
    args = spec_args(args, where, [], ["layer"])
    return obj.layer(ctx.layer_of(args, where))


def _class_spec(args: Any, ctx: SpecContext, where: str) -> tuple[str, int]:
    args = spec_args(args, where, ["class"], ["layer"])
    layer = ctx.layer_of(args, where) if "layer" in args else ctx.output_layer(where)
    return layer, index_in(ctx, layer, class_index(ctx, args["class"], where), where, "class")


@register_spec("class_logit")
def _class_logit(args: Any, ctx: SpecContext, where: str) -> Objective:
    """A class logit; the layer defaults to the model's output."""
    return obj.class_logit(*_class_spec(args, ctx, where))


@register_spec("class_probability")
def _class_probability(args: Any, ctx: SpecContext, where: str) -> Objective:
    """A class's softmax probability (raising it also lowers the others)."""
    return obj.class_probability(*_class_spec(args, ctx, where))


@register_spec("direction")
def _direction(args: Any, ctx: SpecContext, where: str) -> Objective:
    """Dot product (``cosine: true``: cosine similarity) with a vector in the layer's channel space:
    ``vector`` (a .npy file or a list) or ``classes: [a, b]`` of a ``dataset`` (mean feature of a
    minus that of b, from the features stage)."""
    args = spec_args(args, where, [], ["layer", "vector", "classes", "dataset", "cosine"])
    layer = ctx.layer_of(args, where)
    if "vector" in args:
        if "classes" in args or "dataset" in args:
            raise SpecError(f"{where}: give either `vector` or `classes` with `dataset`, not both")
        vector = load_vector(args["vector"], where)
    elif "classes" in args and "dataset" in args:
        vector = _features_direction(ctx, layer, args["classes"], args["dataset"], where)
    else:
        raise SpecError(f"{where}: needs `vector` (a .npy file or a list) or `classes: [a, b]` with `dataset`")
    width = ctx.width(layer, where)
    if vector.shape != (width,):
        raise SpecError(f"{where}: the direction has {vector.size} components but layer {layer!r} has {width} "
                        "channels")
    return obj.direction(layer, torch.from_numpy(vector.astype(np.float32)), cossim=bool(args.get("cosine", False)))


@register_spec("sum")
def _sum(args: Any, ctx: SpecContext, where: str) -> Objective:
    """The sum of a list of specs (each may carry a ``weight``)."""
    if not isinstance(args, list | tuple) or not args:
        raise SpecError(f"{where}: a non-empty list of specs, got {args!r}")
    terms = [build_objective(term, ctx, f"{where}[{i}]") for i, term in enumerate(args)]
    return sum(terms[1:], terms[0])


@register_spec("negate")
def _negate(args: Any, ctx: SpecContext, where: str) -> Objective:
    """Minus a spec: the render minimises it."""
    return -build_objective(args, ctx, where)


# --- directions from files ----------------------------------------------------------


def load_vector(value: Any, where: str = "vector") -> np.ndarray:
    """A direction as a 1-D float array, from a list of numbers or a ``.npy`` file."""
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{where}: direction file {str(path)!r} not found (from {os.getcwd()})")
        vector = np.load(path, allow_pickle=False)
    else:
        vector = np.asarray(value)
    if vector.ndim != 1 or not np.issubdtype(vector.dtype, np.number) or not np.isfinite(vector).all():
        raise SpecError(f"{where}: a direction is a 1-D array of finite numbers, one per channel; got shape "
                        f"{vector.shape} of {vector.dtype}")
    return vector.astype(np.float64)


def class_direction(mean_path: str | os.PathLike, manifest_path: str | os.PathLike, a: Any, b: Any,
                    where: str = "direction") -> np.ndarray:
    """Mean pooled feature of the images labelled ``a`` minus that of ``b``.

    ``mean_path`` is the features stage's ``mean.npy`` (images x channels, rows in manifest order).
    """
    from featvis.vision.data import read_manifest  # pandas: only when a spec needs it

    for path in (mean_path, manifest_path):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{where}: {str(path)!r} not found; the features stage writes it for a layer "
                                    "that an `analyses` entry lists for this model and dataset")
    means = np.load(mean_path, mmap_mode="r")
    labels = read_manifest(manifest_path)["label"].to_numpy()
    if means.ndim != 2 or means.shape[0] != len(labels):
        raise SpecError(f"{where}: {mean_path} has shape {means.shape} but the manifest lists {len(labels)} images "
                        "(stale features?)")
    rows = []
    for label in (str(a), str(b)):
        mask = labels == label
        if not mask.any():
            raise UnknownNameError(f"{where}: no image is labelled {label!r} in {manifest_path}: "
                                   f"{unknown('label', label, sorted(set(labels)))}")
        rows.append(np.asarray(means[mask], dtype=np.float64).mean(0))
    return rows[0] - rows[1]


def _features_direction(ctx: SpecContext, layer: str, classes: Any, dataset: Any, where: str) -> np.ndarray:
    if not isinstance(classes, list | tuple) or len(classes) != 2 or classes[0] == classes[1]:
        raise SpecError(f"{where}.classes: two different dataset labels [a, b] (a minus b), got {classes!r}")
    if ctx.features is None:
        raise SpecError(f"{where}: a direction from classes needs the features stage's files (SpecContext.features)")
    mean_path, manifest_path = ctx.features(str(dataset), layer)
    return class_direction(mean_path, manifest_path, *classes, where=where)


def feature_files(results: str | os.PathLike, model: str) -> FeatureFiles:
    """The pipeline's own layout under ``results``, for building specs outside Snakemake."""
    root = Path(results)
    return lambda dataset, layer: (root / "features" / model / dataset / layer / "mean.npy",
                                   root / "data" / dataset / "manifest.csv")
