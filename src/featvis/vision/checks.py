"""Start checks for the vision stages, run once when the workflow starts, before any job.

Everything that can be checked cheaply is checked here, so a mistake costs seconds, not
a failed job: dataset folders and CSV files exist, architectures are known, weights
files are on disk, layer names are the model's own, channel indices fit their layer.
A model's structure (module names and output shapes) is traced once per spec and
cached, so later starts only read a small JSON file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featvis.core.config import ConfigError
from featvis.core.io import write_json
from featvis.core.names import unknown
from featvis.core.tokengrid import (
    PrefixTokenError,
    TokenGrid,
    default_names,
    prefix_index,
    prefix_suffixes,
    split_layer,
)

Shape = tuple[int, ...] | None
STRUCTURE_VERSION = 2  # raise when what a traced structure holds changes: older cached ones are traced again


def check_datasets(datasets: Mapping[str, Mapping[str, Any]]) -> None:
    """Folder and CSV datasets must point at something that exists."""
    for name, spec in datasets.items():
        source, path = spec["source"], spec.get("path")
        if source == "folder" and not Path(path).is_dir():
            raise ConfigError(f"datasets.{name}.path: image folder {path!r} does not exist "
                              f"(looked at {Path(path).resolve()}); expected <folder>/<class>/<image>")
        if source == "csv" and not Path(path).is_file():
            raise ConfigError(f"datasets.{name}.path: CSV file {path!r} does not exist "
                              f"(looked at {Path(path).resolve()})")
        if source == "folder":
            _check_folder_has_images(name, path)
        if source == "csv" and not _has_data_row(path):
            raise ConfigError(f"datasets.{name}: dataset {name} has no images: CSV file {path!r} has no rows "
                              "under its header (path, label[, split])")


def _check_folder_has_images(name: str, path: str) -> None:
    """A folder dataset is listed here, at start, so an empty one costs no job."""
    from featvis.vision.listing import ManifestError, folder_rows

    try:
        folder_rows(path)
    except ManifestError as error:
        raise ConfigError(f"datasets.{name}: dataset {name} has {error}") from error


def _has_data_row(path: str) -> bool:
    with open(path) as handle:
        next(handle, None)  # the header
        return any(line.strip() for line in handle)  # stops at the first row


def model_structure(name: str, spec: Mapping[str, Any], cache_dir: str | os.PathLike) -> dict[str, Any]:
    """``{"shapes": {layer: shape}, "modules": [...]}`` of a model at its input size, from the
    cache when the spec (and its weights file) are unchanged, else traced now."""
    trained = "train" in spec
    build = {k: v for k, v in spec.items() if k != "train"}
    if trained:  # as training builds it: seeded random weights (no file needed), the trained head's size
        from featvis.vision.train_checks import STAND_IN

        build["weights"] = STAND_IN
    key = hashlib.sha256(json.dumps([STRUCTURE_VERSION, build], sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}-{key}.json"  # the key is in the name: one file per spec
    cached = _read(path)
    if cached and "sources" in cached and all(_same_file(source, stat) for source, stat in cached["sources"]):
        return cached
    if trained:  # its classifier head can be found and sized (checked once per spec, like the trace)
        from featvis.vision.train import check_trainable

        check_trainable(name, build)
    entry = _trace(name, build)
    write_json(path, entry)
    return entry


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stat(path: str | None) -> list[int] | None:
    """What tells a replaced weights file from the one traced: size, inode, modification and status
    change times (a copy, a move or a save over it changes the ctime even when the mtime is kept)."""
    if path is None:
        return None
    info = os.stat(path)
    return [info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


def _same_file(path: str | None, stat: list[int] | None) -> bool:
    try:
        return _stat(path) == stat
    except OSError:
        return False


def _identity(sources: list[str]) -> str | None:
    """What every stage's cache keys on: the content of the weights file and of a builder's source
    file, so replacing either reruns that model's stages."""
    from featvis.vision.checkpoints import file_digest

    return " ".join(file_digest(path) for path in sources) or None


def _trace(name: str, build: Mapping[str, Any]) -> dict[str, Any]:
    """Load the model (this checks the architecture, the weights file and the input size) and run one probe."""
    from torch import nn

    from featvis.core.hooks import layer_names, probe_calls
    from featvis.core.tokens import token_grid
    from featvis.vision.attribution import RECTIFIERS, FunctionalRectifiers
    from featvis.vision.builders import builder_file
    from featvis.vision.models import load_model

    loaded = load_model(build, name)
    sources = [p for p in (loaded.weights, builder_file(build.get("builder"))) if p is not None]
    rectifier_calls = FunctionalRectifiers()  # counts relu calls: DeconvNet's start check
    with rectifier_calls:
        shapes, calls = probe_calls(loaded.module, loaded.preprocess.input_shape())
    modules = dict(loaded.module.named_modules())
    grids = {n: token_grid(modules[n]) for n in shapes if token_grid(modules[n]) is not None}
    return {"shapes": {k: list(v) if v is not None else None for k, v in shapes.items()},
            "modules": layer_names(loaded.module), "weights": loaded.weights,
            "sources": [[path, _stat(path)] for path in sources], "weights_id": _identity(sources),
            "input": list(loaded.preprocess.input_shape()[1:]),
            "token_grids": {n: [g.prefix, g.height, g.width, list(g.names)] for n, g in grids.items()},
            "repeated": {n: c for n, c in calls.items() if c > 1},
            "attention": [n for n in shapes if isinstance(modules[n], nn.MultiheadAttention)],
            "rectifiers": rectifier_calls.calls > 0 or any(type(m) in RECTIFIERS for m in modules.values()),
            "channels_last": _channels_last(loaded.module, shapes)}


def _channels_last(model, shapes: Mapping[str, Shape]) -> list[str]:
    """Layers whose 4-D output is (B, H, W, C): in timm models built channels-last (Swin), all but
    the convolutions (and their BatchNorms), which stay (B, C, H, W)."""
    from torch import nn

    if getattr(model, "output_fmt", "NCHW") != "NHWC":
        return []
    modules = dict(model.named_modules())
    return [name for name, shape in shapes.items() if shape is not None and len(shape) == 3
            and not isinstance(modules[name], nn.Conv2d | nn.BatchNorm2d)]


def structure_grid(structure: Mapping[str, Any], module: str) -> TokenGrid | None:
    """A module's token grid from the cached structure (``None``: not a token layer)."""
    entry = structure.get("token_grids", {}).get(module)
    if entry is None:
        return None
    prefix, height, width, *names = entry  # structures cached before prefix names had three numbers
    return TokenGrid(prefix, height, width, tuple(names[0]) if names else default_names(prefix))


def check_layer(model: str, layer: str, structure: Mapping[str, Any], where: str) -> None:
    """A layer must be one of the model's modules, run once in the forward pass and give one
    tensor that featvis can read as channels (a token layer needs its patch grid); a
    ``<module>@<token>`` name must name a class or register token of a token layer."""
    module, token = split_layer(layer)
    _check_module(model, module, structure, where)
    if token is not None:
        try:
            prefix_index(layer, structure_grid(structure, module))
        except PrefixTokenError as error:
            raise ConfigError(f"{where}: {error} (model {model})") from None


def _check_module(model: str, layer: str, structure: Mapping[str, Any], where: str) -> None:
    if layer not in structure["shapes"]:
        if layer in structure["modules"]:
            raise ConfigError(f"{where}: layer {layer!r} of {model} does not run in its forward pass")
        raise ConfigError(f"{where}: {unknown('layer', layer, structure['modules'])} of model {model}; "
                          f"`featvis layers {model} --config <this config>` lists them all")
    shape, runs = structure["shapes"][layer], structure.get("repeated", {}).get(layer, 1)
    if layer in structure.get("attention", []):
        raise ConfigError(f"{where}: layer {layer!r} of {model} is an nn.MultiheadAttention, which returns "
                          "(output, attention weights); pick the module that reads its output (e.g. the next norm)")
    if shape is None:
        raise ConfigError(f"{where}: layer {layer!r} of {model} returns a tuple or other non-tensor output, "
                          "which featvis cannot read as channels; pick one of its submodules or the next layer")
    if layer in structure.get("channels_last", []):
        raise ConfigError(f"{where}: layer {layer!r} of {model} outputs channels-last maps (B, H, W, C), as timm's "
                          "Swin-style models do, which featvis does not read yet; pick a convolutional layer, or a "
                          "ViT-style model")
    if runs > 1:
        raise ConfigError(f"{where}: layer {layer!r} of {model} runs {runs} times per forward pass (a shared "
                          "module), so its output is ambiguous; pick a layer that runs once")
    if len(shape) == 2 and layer not in structure.get("token_grids", {}):
        tokens, width = shape
        raise ConfigError(f"{where}: layer {layer!r} of {model} outputs {tokens} tokens of width {width} and "
                          f"featvis cannot infer their patch grid; set it in the config: models.{model}.token_grid: "
                          "{prefix: <class and register tokens>, height: <patch rows>, width: <patch columns>}")


def layer_shape(structure: Mapping[str, Any], layer: str) -> Shape:
    """A layer's output shape without the batch axis; ``(C,)`` for a token layer's ``@token``."""
    module, token = split_layer(layer)
    shape = structure["shapes"].get(module)
    if token is None or shape is None:
        return tuple(shape) if shape is not None else None
    return (shape[0],)


def layer_width(structure: Mapping[str, Any], layer: str) -> int | None:
    shape = layer_shape(structure, layer)
    return int(shape[0]) if shape else None


def check_channels(model: str, layer: str, channels: Any, structure: Mapping[str, Any], where: str) -> None:
    """Channel indices must fit the layer's width (``"all"`` always fits)."""
    width = layer_width(structure, layer)
    if channels == "all" or width is None:
        return
    bad = [c for c in channels if not 0 <= c < width]
    if bad:
        raise ConfigError(f"{where}: channel {bad[0]} is out of range for layer {layer!r} of {model}, "
                          f"which has {width} channels (valid: 0..{width - 1})")


def check_vision(config: Mapping[str, Any], cache_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Run every start check of the vision stages; return each model's structure (which
    the render stage's start checks use too)."""
    check_datasets(config["datasets"])
    structures, problems = {}, []
    for name in sorted(config["models"]):  # every model, analysed or rendered: its weights must be here
        try:
            structures[name] = model_structure(name, config["models"][name], cache_dir)
        except Exception as error:  # noqa: BLE001 - a user's model or file can fail in any way: say so at start
            problems.append(_model_problem(name, config["models"][name], error))
    if problems:  # all of them at once: a user fetching weights files learns every name in one go
        raise ConfigError(_model_problems(problems))
    for i, analysis in enumerate(config["analyses"]):
        for layer in analysis["layers"]:
            check_layer(analysis["model"], layer, structures[analysis["model"]], f"analyses[{i}].layers")
    return structures


WEIGHTS_HINT = "nothing is downloaded; docs/paper.md \"Weights files\" says where weights files go"


def _model_problems(problems: list[str]) -> str:
    hint = f" ({WEIGHTS_HINT})" if any("weights file" in p for p in problems) else ""
    if len(problems) == 1:
        return problems[0] + hint
    return f"{len(problems)} models cannot be loaded{hint}:\n" + "\n".join(f"  - {p}" for p in problems)


def _model_problem(name: str, spec: Mapping[str, Any], error: Exception) -> str:
    """One line for a model that cannot load; a missing weights file says where to put it."""
    from featvis.vision.models import MissingWeightsError

    if not isinstance(error, MissingWeightsError) or not error.file:
        known = isinstance(error, KeyError | FileNotFoundError | ValueError | TypeError)
        return f"models.{name}: {'' if known else type(error).__name__ + ': '}{error}"
    where = ", ".join(error.looked_in)
    if spec.get("weights"):
        fix = f"put the file there, or set models.{name}.weights to where it is"
    else:
        fix = f"copy it there (the torch hub cache), or set models.{name}.weights to its path"
    return f"models.{name} ({spec['architecture']}): weights file {error.file!r} not found in {where}; {fix}"


def layer_shapes(structure: Mapping[str, Any]) -> dict[str, Shape]:
    """Layer shapes as tuples, for the config's stage defaults (e.g. Grad-CAM's last spatial layer);
    every ``<layer>@<token>`` of a token layer is listed too, as the non-spatial unit it is."""
    shapes = {k: tuple(v) if v is not None else None for k, v in structure["shapes"].items()}
    for module in structure.get("token_grids", {}):
        grid = structure_grid(structure, module)
        shapes.update({module + suffix: layer_shape(structure, module + suffix) for suffix in prefix_suffixes(grid)})
    return shapes


def check_views(config: Mapping[str, Any], structures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Checks that need each view stage's chosen layers (``analyses[].views``): DeconvNet
    projections swap ReLUs (modules or torch.relu calls), so a model without any (a ViT's GELUs,
    EfficientNet's SiLUs) cannot have them. Asked for by name, that is an error; chosen by default,
    the model's projections are left out and a note (returned) says so."""
    notes = []
    for analysis in config["analyses"]:
        model = analysis["model"]
        if not analysis["views"]["attribution"] or structures[model].get("rectifiers") is not False:
            continue
        why = f"DeconvNet projections need ReLUs (modules or torch.relu / F.relu calls) and {model} has none"
        if model in config.get("attribution", {}).get("layers", {}):
            raise ConfigError(f"attribution.layers.{model}: {why}; set `attribution.layers: {{{model}: []}}` to "
                              "skip them (Grad-CAM still runs)")
        analysis["views"]["attribution"] = []
        notes.append(f"{why}: its projections are skipped (Grad-CAM still runs)")
    return list(dict.fromkeys(notes))
