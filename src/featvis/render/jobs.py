"""From a config job (plain dicts) to settings and renders: what the pipeline scripts call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from featvis.core.hooks import capture, get_layer, run_to_layers
from featvis.render.objectives import Objective
from featvis.render.optimize import RenderSettings
from featvis.render.params import colour_sqrt_from_images
from featvis.render.specs import FeatureFiles, SpecContext, build_objectives

if TYPE_CHECKING:
    from featvis.vision.models import LoadedModel

SETTING_KEYS = ("size", "steps", "lr", "param", "param_options", "colour", "transforms", "regularizers",
                "octaves", "input_size", "snapshots")


def settings_from_job(job: Mapping[str, Any], mean: Any, std: Any) -> RenderSettings:
    """Render settings from a job dict; keys that are not settings (layer, seed ...) are ignored."""
    values = {k: job[k] for k in SETTING_KEYS if job.get(k) is not None}
    if "octaves" in values:
        values["octaves"] = [tuple(o) for o in values["octaves"]]
    for key in ("steps", "size"):
        if key in values and (not isinstance(values[key], int) or values[key] <= 0):
            what = "steps" if key == "steps" else "image size"
            raise ValueError(f"{what} must be a positive integer, got {values[key]!r}")
    return RenderSettings(mean=tuple(mean), std=tuple(std), **values)


def fit_to_model(job: Mapping[str, Any], loaded: LoadedModel) -> dict[str, Any]:
    """Size-dependent settings from the model's input instead of fixed ImageNet numbers: with
    ``input_size: null`` a token model (fixed patch grid) sees the render resampled to its own
    input size, and a model smaller than the render is rendered at its own size; the standard
    transforms' pixel amounts shrink with renders under ``STANDARD_SIZE`` px."""
    from featvis.core.tokens import token_grid
    from featvis.render.transforms import STANDARD_SIZE, standard_transforms

    job, size = dict(job), loaded.preprocess.size
    tokens = any(token_grid(m) is not None for m in loaded.module.modules())
    if job.get("input_size") is None and (tokens or min(size) < job["size"]):
        job["size"] = min(job["size"], max(size))  # a render no larger than the model sees
        job["input_size"] = size if size[0] != size[1] else size[0]
    if job.get("transforms", "standard") == "standard" and job["size"] < STANDARD_SIZE:
        job["transforms"] = standard_transforms(job["size"])
    return job


def layer_channels(model: nn.Module, layer: str, channels: Any, in_channels: int = 3,
                   probe: int | tuple[int, int] = 64) -> list[int]:
    """``"all"`` becomes every channel of ``layer`` (found by a probe forward); a list is checked."""
    get_layer(model, layer)
    if channels != "all" and not isinstance(channels, list | tuple):
        raise ValueError(f"channels must be a list of integers or 'all', got {channels!r}")
    with torch.no_grad(), capture(model, [layer], stop_early=True) as acts:
        device = next(model.parameters()).device
        size = (probe, probe) if isinstance(probe, int) else tuple(probe)
        run_to_layers(model.eval(), torch.zeros(1, in_channels, *size, device=device), acts)
    count = acts[layer].shape[1]
    if channels == "all":
        return list(range(count))
    bad = [c for c in channels if not isinstance(c, int) or not 0 <= c < count]
    if bad:
        raise ValueError(f"channel {bad[0]!r} is out of range for layer {layer!r}, which has {count} channels "
                         f"(valid: 0..{count - 1})")
    return [int(c) for c in channels]


def job_objectives(loaded: LoadedModel, job: Mapping[str, Any], features: FeatureFiles | None = None,
                   where: str = "objectives") -> dict[str, Objective]:
    """A job's ``objectives:`` (item name -> spec) built against its model;
    the job's ``layer``, if any, is the layer of specs that name none."""
    if int(job.get("copies", 1)) != 1 or float(job.get("diversity", 0.0)):
        raise ValueError(f"{where}: copies and diversity apply to `channels` jobs; list one item per render instead")
    ctx = SpecContext.for_model(loaded, layer=job.get("layer"), features=features)
    return build_objectives(job["objectives"], ctx, where)


def dataset_images(manifest_path: str, size: int, limit: int = 256) -> list[np.ndarray]:
    """Up to ``limit`` images of a manifest, evenly spaced over its rows, as (size, size, 3) uint8."""
    from featvis.vision.data import display_image, read_manifest

    paths = list(read_manifest(manifest_path)["path"])
    if not paths:
        raise ValueError(f"manifest {manifest_path} lists no images")
    picks = sorted({int(i) for i in np.linspace(0, len(paths) - 1, min(limit, len(paths)))})
    return [display_image(paths[i], size) for i in picks]


def with_dataset_statistics(job: Mapping[str, Any], images: Sequence[np.ndarray] | None) -> dict[str, Any]:
    """Resolve ``colour: dataset`` (colour covariance) and ``maco`` magnitudes from dataset images."""
    job = dict(job)
    if job.get("colour") == "dataset":
        if not images:
            raise ValueError("colour: dataset needs a `dataset:` (a name under datasets) in the same job")
        job["colour"] = colour_sqrt_from_images(np.stack(images).astype(np.float64) / 255.0)
    if job.get("param") == "maco" and images:
        job["param_options"] = {**dict(job.get("param_options") or {}), "magnitude_images": list(images)}
    return job
