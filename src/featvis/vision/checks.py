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

Shape = tuple[int, ...] | None


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


def model_structure(name: str, spec: Mapping[str, Any], cache_dir: str | os.PathLike) -> dict[str, Any]:
    """``{"shapes": {layer: shape}, "modules": [...]}`` of a model at its input size, from the
    cache when the spec (and its weights file) are unchanged, else traced now."""
    trained = "train" in spec
    build = {k: v for k, v in spec.items() if k != "train"}
    if trained:
        build.pop("weights", None)
        build["allow_random"] = True
    key = hashlib.sha256(json.dumps(build, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"{name}-{key}.json"  # the key is in the name: one file per spec
    cached = _read(path)
    if cached and _same_file(cached["weights"], cached["weights_stat"]):
        return cached
    entry = _trace(name, build)
    write_json(path, entry)
    return entry


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _stat(path: str | None) -> list[int] | None:
    if path is None:
        return None
    info = os.stat(path)
    return [info.st_size, info.st_mtime_ns]


def _same_file(path: str | None, stat: list[int] | None) -> bool:
    try:
        return _stat(path) == stat
    except OSError:
        return False


def _trace(name: str, build: Mapping[str, Any]) -> dict[str, Any]:
    """Load the model (this checks the architecture and the weights file) and run one probe."""
    from featvis.core.hooks import execution_order, layer_names
    from featvis.vision.models import load_model

    loaded = load_model(build, name)
    p = loaded.preprocess
    shapes = execution_order(loaded.module, (1, p.channels, p.image_size, p.image_size))
    return {"shapes": {k: list(v) if v is not None else None for k, v in shapes.items()},
            "modules": layer_names(loaded.module), "weights": loaded.weights, "weights_stat": _stat(loaded.weights)}


def check_layer(model: str, layer: str, structure: Mapping[str, Any], where: str) -> None:
    """A layer must be one of the model's modules and must run in the forward pass."""
    if layer in structure["shapes"]:
        return
    if layer in structure["modules"]:
        raise ConfigError(f"{where}: layer {layer!r} of {model} does not run in its forward pass")
    raise ConfigError(f"{where}: {unknown('layer', layer, structure['modules'])} of model {model}; "
                      f"results/models/{model}/layers.tsv lists them all")


def layer_width(structure: Mapping[str, Any], layer: str) -> int | None:
    shape = structure["shapes"].get(layer)
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
        except (KeyError, FileNotFoundError, ValueError, TypeError) as error:
            problems.append(_model_problem(name, config["models"][name], error))
    if problems:  # all of them at once: a user fetching weights files learns every name in one go
        raise ConfigError(_model_problems(problems))
    for i, analysis in enumerate(config["analyses"]):
        for layer in analysis["layers"]:
            check_layer(analysis["model"], layer, structures[analysis["model"]], f"analyses[{i}].layers")
    return structures


WEIGHTS_HINT = "nothing is downloaded; README \"Reproduce the paper figures\" says where weights files go"


def _model_problems(problems: list[str]) -> str:
    hint = f" ({WEIGHTS_HINT})" if any("weights file" in p for p in problems) else ""
    if len(problems) == 1:
        return problems[0] + hint
    return f"{len(problems)} models cannot be loaded{hint}:\n" + "\n".join(f"  - {p}" for p in problems)


def _model_problem(name: str, spec: Mapping[str, Any], error: Exception) -> str:
    """One line for a model that cannot load; a missing weights file says where to put it."""
    from featvis.vision.models import MissingWeightsError

    if not isinstance(error, MissingWeightsError) or not error.file:
        return f"models.{name}: {error}"
    where = ", ".join(error.looked_in)
    if spec.get("weights"):
        fix = f"put the file there, or set models.{name}.weights to where it is"
    else:
        fix = f"copy it there (the torch hub cache), or set models.{name}.weights to its path"
    return f"models.{name} ({spec['architecture']}): weights file {error.file!r} not found in {where}; {fix}"


def layer_shapes(structure: Mapping[str, Any]) -> dict[str, Shape]:
    """Layer shapes as tuples, for the config's stage defaults (e.g. Grad-CAM's last spatial layer)."""
    return {k: tuple(v) if v is not None else None for k, v in structure["shapes"].items()}
