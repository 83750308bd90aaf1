"""The workflow's start checks as one function: what Snakemake's parse of the workflow runs
(workflow/rules/common.smk) and what ``featvis check`` runs, so both say the same thing.

Nothing here knows Snakemake: the caller passes the raw config and where traced model
structures are cached, and prints the notes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from featvis.core.config import ConfigError, choose_views, load_yaml, resolve

ROOT = Path(__file__).resolve().parents[2]  # the checkout featvis runs from (src/featvis/start.py)
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
MODEL_CACHE = ".snakemake/featvis/models"  # traced model structures, one small JSON per model

NOTHING_PLANNED = """\
this config plans no analysis: it names no dataset, model, render job or protein table. It needs at least
  datasets:  {mine: {source: folder, path: <folder with one sub-folder per class>}}
  models:    {efficientnet_lite0: {architecture: efficientnet_lite0}}
  analyses:  [{model: efficientnet_lite0, dataset: mine, layers: ["_blocks.10"]}]
or attention.variants (a protein table, docs/attention.md); `featvis init <image folder>` writes a starter config"""


def start_checks(raw: Mapping[str, Any], schema: Mapping[str, Any] | None = None,
                 cache_dir: str | os.PathLike = MODEL_CACHE) -> tuple[dict[str, Any], list[str]]:
    """The resolved config and the notes to print, or a ConfigError naming the key and the fix.

    Resolves the config (schema, defaults, job settings), refuses a config that plans nothing,
    then runs every stage's start checks; each model's structure is traced once and cached
    under ``cache_dir``."""
    from featvis.concepts.checks import check_concepts
    from featvis.gallery.checks import check_gallery
    from featvis.render.checks import accentuate_plan, check_render
    from featvis.vision.checks import check_views, check_vision, layer_shapes
    from featvis.vision.shards import shard_plan
    from featvis.vision.train_checks import check_training

    resolved = resolve(raw, schema if schema is not None else load_yaml(SCHEMA))
    notes = plan_notes(resolved)
    check_training(resolved)  # refuses what cannot train; fills trained models' class_names, num_classes
    structures = check_vision(resolved, cache_dir)
    check_render(resolved, structures)
    notes += accentuate_plan(resolved, structures)
    check_gallery(resolved, structures)
    choose_views(resolved, lambda model: layer_shapes(structures[model]))
    notes += check_views(resolved, structures)
    notes += device_notes(resolved)
    resolved["shard_plan"] = shard_plan(resolved)  # counted here once; cluster jobs read the same plan
    check_concepts(resolved, {m: layer_shapes(s) for m, s in structures.items()},  # fills concepts.plan
                   token_layers={m: list(s.get("token_grids", {})) for m, s in structures.items()})
    resolved["weights_ids"] = {name: s["weights_id"] for name, s in structures.items()}  # see model_spec
    return resolved, notes


def device_notes(config: Mapping[str, Any]) -> list[str]:
    """A note when the config asks for CUDA and this machine has none: jobs run here would fail (a
    cluster's head node plans jobs for GPU nodes, so it is not an error)."""
    asked = {str(config.get("device", "auto")), str(config.get("attention", {}).get("device") or "auto")}
    if not any(device.startswith("cuda") for device in asked):
        return []
    import torch

    if torch.cuda.is_available():
        return []
    return ["device 'cuda' is asked for, but this machine has no CUDA GPU (torch.cuda.is_available() is "
            "False): jobs that run here will fail; use device: auto (or cpu), or run where the GPUs are"]


def plan_notes(config: Mapping[str, Any]) -> list[str]:
    """Refuse a config that would run nothing (an empty gallery, silently); note one that names
    models or datasets but analyses nothing with them."""
    render = config.get("render", {})
    renders = bool(render.get("jobs")) or any(render.get("figures", {}).values())
    proteins = bool(config.get("attention", {}).get("variants"))
    if config["analyses"] or renders or proteins:
        return []
    if not config["models"] and not config["datasets"]:
        raise ConfigError(NOTHING_PLANNED)
    return ["this config has no analyses (and no render jobs or protein table): only the data checks, layer "
            "tables and filter grids run; add analyses: [{model: <model>, dataset: <dataset>, layers: [<layer>]}] "
            "(`featvis layers <model>` lists the layers)"]
