"""Start checks and the plan of the concepts stage (no torch: they run when the workflow parses).

The plan, ``concepts.plan`` in the resolved config, is one entry per (model, layer): the dataset it
is fitted on (the first analysis of the model that has the layer), the number of concepts, and the
positions the fit will see. Checked here: every layer is an analysis layer; the fit sees at least
as many positions as concepts; ``nmf`` on a layer the features stage has already seen go negative
is refused unless ``relu: true`` or ``shift: min`` (on a first run the same check runs when the fit
job starts, from the features stage's per-image minima, before any pass over the images).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from featvis.core.config import ConfigError

RESULTS = "results"


def n_concepts(section: Mapping[str, Any], channels: int) -> int:
    if section["n_concepts"] is not None:
        return int(section["n_concepts"])
    return max(2, round(section["expansion"] * channels))


def concept_plan(config: Mapping[str, Any], shapes: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per concept layer; ``shapes[model][layer]`` is the layer's (C, H, W) or (C,)."""
    section = config["concepts"]
    plan = []
    for model, layers in section["layers"].items():
        analyses = [a for a in config["analyses"] if a["model"] == model]
        if not analyses:
            raise ConfigError(f"concepts.layers.{model}: {model!r} is not analysed (no analyses entry uses it); "
                              "add an analysis or drop it from concepts.layers")
        for layer in layers:
            dataset = next((a["dataset"] for a in analyses if layer in a["layers"]), None)
            if dataset is None:
                known = ", ".join(layer for a in analyses for layer in a["layers"])
                raise ConfigError(f"concepts.layers.{model}: {layer!r} is not an analysis layer of {model} "
                                  f"(add it to analyses[].layers; known: {known})")
            shape = tuple(shapes[model][layer])
            grid = shape[1] * shape[2] if len(shape) == 3 else 1
            plan.append({"model": model, "dataset": dataset, "layer": layer, "channels": int(shape[0]),
                         "grid": int(grid), "n_concepts": n_concepts(section, int(shape[0]))})
    return plan


def fitted_positions(images: int, grid: int, section: Mapping[str, Any]) -> int:
    return min(images * min(section["positions_per_image"], grid), section["max_positions"])


def check_concepts(config: dict[str, Any], shapes: Mapping[str, Mapping[str, Any]], results: str = RESULTS,
                   token_layers: Mapping[str, Any] | None = None) -> None:
    """Fill ``concepts.plan`` and ``concepts.seed``; refuse what cannot fit, naming the fix.
    ``token_layers``: each model's transformer token layers, which the stage does not read yet."""
    section = config["concepts"]
    for model, layers in section["layers"].items():
        tokens = sorted(set(layers) & set((token_layers or {}).get(model, ())))
        if tokens:
            raise ConfigError(f"concepts.layers.{model}: {', '.join(tokens)} is a transformer token layer, which the "
                              "concepts stage does not read yet (it reads convolutional maps and (batch, channels) "
                              f"layers); use {tokens[0]}@cls (the class token) or a convolutional model's layer")
    if section["seed"] is None:
        section["seed"] = config["seed"]
    plan = concept_plan(config, shapes)
    for entry in plan:
        where = f"concepts ({entry['model']} {entry['layer']})"
        images = config["shard_plan"][entry["dataset"]]["images"]
        positions = fitted_positions(images, entry["grid"], section)
        if positions < entry["n_concepts"]:
            raise ConfigError(
                f"{where}: the fit sees {positions} positions ({images} images x "
                f"{min(section['positions_per_image'], entry['grid'])} positions each, at most max_positions "
                f"{section['max_positions']}) for {entry['n_concepts']} concepts; a dictionary needs at least as many "
                "positions as concepts: lower concepts.n_concepts (or expansion), or raise "
                "concepts.positions_per_image or the number of images")
        minima = Path(results) / "features" / entry["model"] / entry["dataset"] / entry["layer"] / "min.npy"
        if "nmf" in section["methods"] and minima.exists():
            check_nonnegative(minima, section, where)
    section["plan"] = plan


def check_nonnegative(minima: str | os.PathLike, section: Mapping[str, Any], where: str) -> None:
    """``nmf`` on a layer whose per-image minima (the features stage's ``min.npy``) go below zero
    needs ``relu: true`` or ``shift: min``."""
    if section["relu"] or section["shift"] == "min":
        return
    lowest = float(np.nanmin(np.load(minima, mmap_mode="r"))) if os.path.getsize(minima) else 0.0
    if lowest < 0:
        raise ConfigError(f"{where}: nmf needs non-negative activations, but this layer goes down to {lowest:.4g} "
                          f"({minima}); set concepts.relu: true (keep the positive part) or concepts.shift: min "
                          "(subtract each channel's minimum), or methods: [topk_sae]")
