"""Start checks for the render stage, run once when the workflow starts, before any job:
each job's layer, channels and objective specs against the model's traced structure
(:func:`featvis.vision.checks.model_structure`), and the features a class direction reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featvis.core.config import ConfigError
from featvis.vision.checks import check_channels, check_layer


def check_render(config: Mapping[str, Any], structures: Mapping[str, Mapping[str, Any]]) -> None:
    render = config.get("render", {})
    for name, job in render.get("jobs", {}).items():
        where, structure = f"render.jobs.{name}", structures[job["model"]]
        if "layer" in job:
            check_layer(job["model"], job["layer"], structure, f"{where}.layer")
        if "channels" in job:
            check_channels(job["model"], job["layer"], job["channels"], structure, f"{where}.channels")
        for item, spec in job.get("objectives", {}).items():
            for kind, args in objective_terms(spec):
                _check_term(config, job, kind, args, structure, f"{where}.objectives.{item}.{kind}")
    for kind, jobs in render.get("figures", {}).items():
        for name, job in jobs.items():
            where, structure = f"render.figures.{kind}.{name}", structures[job["model"]]
            check_layer(job["model"], job["layer"], structure, f"{where}.layer")
            used = job.get("channels", []) if kind == "regularization" else (
                [c for pair in job["pairs"] for c in pair] if kind == "addition" else list(job["pair"]))
            check_channels(job["model"], job["layer"], used, structure, where)


def accentuate_plan(config: dict[str, Any], structures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Fit accentuation to what exists, with a note for each change (nothing here is the user's error):
    at most ``patches.k`` images per unit (the patches stage's table holds no more), and only models
    whose input is a square RGB image (a photo seeds an image parametrization, which is square and
    3-channel); ``render.accentuate.models`` lists the models it runs on."""
    accent = config.get("render", {}).get("accentuate", {})
    if not accent.get("enabled"):
        return []
    notes = []
    k = config.get("patches", {}).get("k")
    if k is not None and accent.get("patches", 0) > k:
        notes.append(f"render.accentuate.patches: {accent['patches']} top images per unit, but the patches stage "
                     f"keeps {k} (patches.k): accentuating {k}")
        accent["patches"] = k
    accent["models"] = []
    for model, structure in structures.items():
        shape = list(structure.get("input", []))  # (channels, height, width)
        if len(shape) == 3 and shape[0] == 3 and shape[1] == shape[2]:
            accent["models"].append(model)
        elif any(job["model"] == model for job in config["render"].get("jobs", {}).values()):
            notes.append(f"no feature accentuation for {model}: its input is {'x'.join(map(str, shape))} "
                         "(channels x height x width); accentuation needs a square RGB input")
    return notes


def objective_terms(spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The (kind, arguments) leaves of a render objective spec, through `sum` and `negate`."""
    terms = []
    for kind, args in spec.items():
        if kind == "sum":
            terms += [term for part in args for term in objective_terms(part)]
        elif kind == "negate":
            terms += objective_terms(args)
        elif kind != "weight":
            terms.append((kind, args))
    return terms


def _check_term(config: Mapping[str, Any], job: Mapping[str, Any], kind: str, args: Any,
                structure: Mapping[str, Any], where: str) -> None:
    """A spec's layer and channel, and a class direction's features, checked before any job."""
    if not isinstance(args, dict):
        return
    layer = args.get("layer", job.get("layer") if kind in ("channel", "neuron", "layer", "direction") else None)
    if layer is None:
        return
    check_layer(job["model"], layer, structure, f"{where}.layer")
    if kind in ("channel", "neuron") and isinstance(args.get("channel"), int):
        check_channels(job["model"], layer, [args["channel"]], structure, where)
    if kind == "direction" and "classes" in args:
        pair = next((a for a in config["analyses"] if (a["model"], a["dataset"]) == (job["model"], args["dataset"])),
                    None)
        if pair is None or layer not in pair["layers"]:
            raise ConfigError(f"{where}: a direction from classes reads the features of {job['model']} on "
                              f"{args['dataset']!r} at layer {layer!r}: add that layer to an analyses entry of "
                              f"that model and dataset")
