"""The one resolved config: checked against the schema, defaults filled once, job
settings merged in their documented order, cross-references and stage layers decided.

Every rule reads the resolved values, so no rule or script repeats a default. The order
for a render job is: schema defaults < ``render.defaults`` < the top-level ``seed`` <
the job's own keys (for figure jobs, the kind's own defaults sit just under the job's
keys, as the schema places them there).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from featvis.core.names import did_you_mean

# Stages whose layer list (`<stage>.layers.<model>`) chooses among a pair's analysis layers.
VIEW_STAGES = ("patches", "neighbors", "embed", "attribution", "cam")
RENDER_FIGURE_KINDS = ("addition", "interpolation", "regularization")

Shapes = Mapping[str, tuple[int, ...] | None]  # layer -> output shape without the batch axis


class ConfigError(ValueError):
    """A config that cannot run; the message names the key."""


def load_yaml(path: str | Path) -> Any:
    return yaml.safe_load(Path(path).read_text())


# --- checking against the schema ---------------------------------------------------------------


def check(raw: Any, schema: Mapping[str, Any]) -> None:
    """Raise ConfigError listing every schema violation, each naming its key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"the config must be a mapping of keys, got {type(raw).__name__}")
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(raw), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = "\n".join(f"  - {explain(error, schema)}" for error in errors)
        raise ConfigError(f"invalid config ({len(errors)} problem{'s' * (len(errors) > 1)}):\n{lines}")


def key_path(parts: Iterable[Any]) -> str:
    """``['analyses', 0, 'model']`` -> ``analyses[0].model``."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "a mapping of keys", "null": "null"}


def _type_word(value: Any) -> str:
    for word, kind in (("true or false", bool), ("an integer", int), ("a number", float), ("a string", str),
                       ("a list", list), ("a mapping of keys", dict)):
        if isinstance(value, kind):
            return word
    return "null" if value is None else type(value).__name__


def explain(error: ValidationError, schema: Mapping[str, Any]) -> str:
    """One line for one violation: the key, what is wrong, and a suggestion where one helps."""
    if error.context:  # oneOf / anyOf: report the branch that came closest
        error = best_match(error.context)
    where = key_path(error.absolute_path)
    kind = error.validator
    if kind in ("additionalProperties", "unevaluatedProperties"):
        known = known_keys(error.schema, schema)
        unknown = [k for k in error.instance if k not in known]
        return "; ".join(f"{key_path([*error.absolute_path, k])}: unknown key{did_you_mean(k, known)} "
                         f"(known keys here: {', '.join(sorted(known))})" for k in unknown)
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(_TYPE_WORDS.get(w, w) for w in wanted)
        return f"{where}: expected {words}, got {error.instance!r} ({_type_word(error.instance)})"
    if kind == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(str(error.instance), options)
        return f"{where}: {error.instance!r} is not one of {', '.join(options)}{hint}"
    if kind == "not":  # the schema's way to say "not together"
        parts = error.validator_value.get("anyOf", [error.validator_value])
        keys = [k for part in parts for k in part.get("required", [])]
        given = [k for k in keys if isinstance(error.instance, dict) and k in error.instance]
        if given:
            return f"{where}: {', '.join(repr(k) for k in given)} cannot be combined with the other keys given here"
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"{where}: missing required key {missing!r}"
    return f"{where}: {error.message}"


def known_keys(node: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    """Property names a schema node allows, through allOf and $ref."""
    keys = list(node.get("properties", {}))
    for part in node.get("allOf", []):
        keys += known_keys(part, root)
    if "$ref" in node:
        keys += known_keys(_ref(node["$ref"], root), root)
    return list(dict.fromkeys(keys))


def _ref(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


# --- filling defaults ----------------------------------------------------------------------------


def fill_defaults(value: Any, node: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """``value`` with every missing schema ``default`` filled in, through properties,
    additionalProperties, items, allOf and $ref (a copy; the input is not changed)."""
    value = copy.deepcopy(value)
    _fill(value, node, root)
    return value


def _fill(value: Any, node: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    if "$ref" in node:
        _fill(value, _ref(node["$ref"], root), root)
    for part in node.get("allOf", []):
        _fill(value, part, root)
    if isinstance(value, dict):
        properties = node.get("properties", {})
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _fill(value[key], sub, root)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                if key not in properties:
                    _fill(item, extra, root)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _fill(item, node["items"], root)


# --- resolving ------------------------------------------------------------------------------------


def resolve(raw: Mapping[str, Any], schema: Mapping[str, Any],
            layer_shapes: Callable[[str], Shapes] | None = None) -> dict[str, Any]:
    """The config every rule reads: checked, merged in the documented order, defaults
    filled, each analysis's view layers chosen (see :func:`choose_views`)."""
    check(raw, schema)
    merged = _merge_job_settings(raw)
    config = fill_defaults(merged, schema, schema)
    _check_references(config)
    for key in ("seed", "threads", "device"):  # the protein stage inherits unless it says otherwise
        config["attention"].setdefault(key, config[key])
    config["analyses"] = _merge_analyses(config["analyses"])
    choose_views(config, layer_shapes)
    return config


def choose_views(config: dict[str, Any], layer_shapes: Callable[[str], Shapes] | None = None) -> None:
    """Set ``analyses[].views``: the layers each view stage runs on. ``layer_shapes(model)``
    (from the vision start checks) lets a stage's default pick by shape, e.g. the last
    spatial layer for Grad-CAM; without it every analysis layer counts as spatial."""
    for analysis in config["analyses"]:
        shapes = layer_shapes(analysis["model"]) if layer_shapes else {}
        analysis["views"] = {stage: view_layers(config, stage, analysis, shapes) for stage in VIEW_STAGES}


def _merge_job_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Render jobs on top of ``render.defaults`` and the top-level seed, before schema defaults
    (filling first would let a schema default beat a user's ``render.defaults``)."""
    config = copy.deepcopy(dict(raw))
    render = config.get("render")
    if not render:
        return config
    base = {**render.get("defaults", {}), "seed": raw.get("seed", 0)}
    render["jobs"] = {name: {**base, **job} for name, job in render.get("jobs", {}).items()}
    figures = render.get("figures", {})
    for kind, jobs in figures.items():
        figures[kind] = {name: {**base, **job} for name, job in jobs.items()}
    return config


# The two lines that declare a missing model or dataset, for the message that says none is declared.
_DECLARE = {"models": "\n  models:\n    {name}: {{architecture: {name}}}   # a torchvision, timm or built-in name",
            "datasets": "\n  datasets:\n    {name}: {{source: folder, path: <folder with one sub-folder per class>}}"}


def _check_references(config: Mapping[str, Any]) -> None:
    """Every name that points into models or datasets must exist there."""
    def need(name: str, table: str, where: str) -> None:
        if not config[table]:
            raise ConfigError(f"{where}: {name!r} names a {table[:-1]}, but the config declares no {table}; "
                              f"add{_DECLARE[table].format(name=name)}")
        if name not in config[table]:
            raise ConfigError(f"{where}: {name!r} is not in {table}{did_you_mean(name, config[table])} "
                              f"(known: {', '.join(config[table])})")

    for i, analysis in enumerate(config["analyses"]):
        need(analysis["model"], "models", f"analyses[{i}].model")
        need(analysis["dataset"], "datasets", f"analyses[{i}].dataset")
    for name, spec in config["models"].items():
        if "train" in spec:
            need(spec["train"]["dataset"], "datasets", f"models.{name}.train.dataset")
    render = config.get("render", {})
    jobs = [(f"render.jobs.{n}", j) for n, j in render.get("jobs", {}).items()]
    jobs += [(f"render.figures.{k}.{n}", j) for k in RENDER_FIGURE_KINDS
             for n, j in render.get("figures", {}).get(k, {}).items()]
    for where, job in jobs:
        need(job["model"], "models", f"{where}.model")
        if job.get("dataset"):
            need(job["dataset"], "datasets", f"{where}.dataset")
    analysed = {a["model"] for a in config["analyses"]}
    for section in ("patches", "neighbors", "embed"):
        for model in config[section].get("layers", {}):
            if model not in analysed:
                raise ConfigError(f"{section}.layers.{model}: {model!r} is not analysed (no analyses entry uses it)")
    for key in ("layers", "cam_layers"):
        for model in config["attribution"].get(key, {}):
            if model not in analysed:
                raise ConfigError(f"attribution.{key}.{model}: {model!r} is not analysed (no analyses entry uses it)")


def _merge_analyses(analyses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (model, dataset), layers in first-seen order."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for analysis in analyses:
        key = (analysis["model"], analysis["dataset"])
        entry = pairs.setdefault(key, {"model": key[0], "dataset": key[1], "layers": []})
        entry["layers"] += [layer for layer in analysis["layers"] if layer not in entry["layers"]]
    return list(pairs.values())


def is_spatial(shape: tuple[int, ...] | None) -> bool:
    """A (C, H, W) output with more than one position."""
    return shape is not None and len(shape) == 3 and shape[1] * shape[2] > 1


def view_layers(config: Mapping[str, Any], stage: str, analysis: Mapping[str, Any], shapes: Shapes) -> list[str]:
    """Layers a view stage runs on for one analysis: the stage's explicit list for the model
    (each must be analysed), else the stage's default choice among the analysis layers."""
    section, key = ("attribution", "cam_layers") if stage == "cam" else (stage, "layers")
    model, known = analysis["model"], analysis["layers"]
    chosen = config[section].get(key, {}).get(model)
    if chosen is not None:
        for layer in chosen:
            if layer not in known:
                raise ConfigError(
                    f"{section}.{key}.{model}: {layer!r} is not an analysis layer of {model} on "
                    f"{analysis['dataset']} (add it to analyses[].layers; known: {', '.join(known)})")
        return list(chosen)
    spatial = [layer for layer in known if layer not in shapes or is_spatial(shapes[layer])]
    if stage == "cam":  # Grad-CAM reads best at the deepest spatial layer
        return spatial[-1:]
    if stage == "attribution":  # projections need a spatial position to start from
        return spatial
    return list(known)
