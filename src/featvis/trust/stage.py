"""The trust stage's work for one render job: the path check of every render and the seed
stability of every rendered unit, as one record per layer (docs/trust.md).

Inputs are files other stages made: the render job's images (``params.npz``), the features
stage's per-image maxima of the layer (``max.npy``, to pick each unit's top-K and reference
images) and the dataset's manifest (to read those images). The model runs on the selected
natural images and on the renders; the seed renders use the render job's own settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featvis.render import objectives as obj
from featvis.render.optimize import RenderSettings, render
from featvis.render.transforms import derive_seed
from featvis.trust import path
from featvis.trust.seeds import seed_stability

BATCH = 32  # natural images per forward pass
ImageLoader = Callable[[list[int]], torch.Tensor]  # dataset row indices -> model-ready images


@dataclass(frozen=True)
class TrustOptions:
    """The `trust:` section of the config (workflow/schemas/config.schema.yaml)."""

    k: int = path.DEFAULT_K
    reference: str = "bottom"
    seeds: int = 3
    probe_layers: str = "blocks"  # blocks | analysed
    threshold: float = path.THRESHOLD
    seed: int = 0  # for reference: random


@dataclass
class Natural:
    """What the features stage and the dataset give one layer: per-image maxima and image paths."""

    dataset: str
    maxima: np.ndarray  # (N images, C) per-image channel maxima
    paths: list[str]  # manifest order, one per row of maxima


def missing_features(model: str, layer: str) -> str:
    return (f"no path check: the features stage did not run on layer {layer} of {model} for any dataset, so there "
            f"are no natural images to compare the render with; add {layer} to the layers of an analysis of "
            f"{model} (analyses: in the config)")


def unit_images(maxima: np.ndarray, channel: int, options: TrustOptions) -> tuple[np.ndarray, np.ndarray, str]:
    """The unit's top-K image indices (largest maximum first, ties to the lower index), its
    reference indices and the reference label."""
    values = np.asarray(maxima[:, channel], dtype=np.float64)
    top = np.argsort(-values, kind="stable")[:options.k]
    reference, label = path.reference_indices(values, top, options.k, options.reference, options.seed)
    return top, reference, label


def natural_vectors(model: nn.Module, load: ImageLoader, indices: Sequence[int], layers: Sequence[str],
                    device: torch.device) -> dict[int, dict[str, torch.Tensor]]:
    """Pooled vectors of each listed dataset image at the probe layers: ``index -> layer -> (C,)``."""
    indices = sorted({int(i) for i in indices})
    out: dict[int, dict[str, torch.Tensor]] = {}
    for start in range(0, len(indices), BATCH):
        chunk = indices[start:start + BATCH]
        vectors, _ = path.pooled_vectors(model, load(chunk).to(device), layers)
        out.update({i: {name: v[row] for name, v in vectors.items()} for row, i in enumerate(chunk)})
    return out


def render_inputs(images: np.ndarray, settings: RenderSettings) -> torch.Tensor:
    """Renders (``(B, H, W, 3)`` in [0, 1]) as the model saw them when they were made (the renderer's
    final pass, featvis.render.optimize): resampled to ``settings.input_size`` when the job sets one,
    the luminance for a one-channel model, an opaque constant 1 for channels beyond three; normalised."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    if settings.input_size:
        size = settings.input_size
        size = tuple(size) if isinstance(size, tuple | list) else (int(size), int(size))
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    channels = len(settings.mean)
    if channels == 1:
        x = x.mean(1, keepdim=True)
    elif channels > 3:
        x = torch.cat([x, x.new_ones(x.shape[0], channels - 3, *x.shape[2:])], 1)
    shape = (1, -1, 1, 1)
    return (x - torch.tensor(settings.mean).reshape(shape)) / torch.tensor(settings.std).reshape(shape)


def render_vectors(model: nn.Module, images: np.ndarray, settings: RenderSettings, layers: Sequence[str],
                   device: torch.device) -> dict[str, torch.Tensor]:
    """Pooled vectors of renders at the probe layers, fed as :func:`render_inputs` makes them."""
    return path.pooled_vectors(model, render_inputs(images, settings).to(device), layers)[0]


def seed_renders(model: nn.Module, layer: str, channels: Sequence[int], settings: RenderSettings, base_seed: int,
                 seeds: int, device: torch.device, reuse: Mapping[int, np.ndarray] | None = None,
                 ) -> tuple[np.ndarray, list[int]]:
    """``seeds`` renders of each channel, channel-major, from one batch: the channel objective alone
    (no diversity term, which pushes copies apart on purpose), seed ``s`` of channel ``c`` derived
    from the job's seed, the layer, ``c`` and ``s``, as the render job derives its copy ``s``. So
    ``reuse`` (channel -> the render job's copy 0, when it was made with this same objective)
    stands in for seed 0, and only the other seeds are rendered."""
    reuse = reuse or {}
    channels = [int(c) for c in channels]
    items = [(c, s) for c in channels for s in range(seeds)]
    todo = [(c, s) for c, s in items if not (s == 0 and c in reuse)]
    made = {}
    if todo:
        seed_list = [derive_seed(base_seed, layer, c, s) for c, s in todo]
        result = render(model, obj.channel(layer, [c for c, _ in todo]), seed_list, settings, device=str(device),
                        progress=True)  # seed renders: as long as the render job itself
        made = dict(zip(todo, result.images, strict=True))
    images = np.stack([reuse[c] if (c, s) not in made else made[(c, s)] for c, s in items])
    return images.astype(np.float32), [derive_seed(base_seed, layer, c, s) for c, s in items]


def _stack(vectors: Mapping[int, Mapping[str, torch.Tensor]], indices: Sequence[int], layer: str) -> torch.Tensor:
    return torch.stack([vectors[int(i)][layer] for i in indices]) if len(indices) else torch.zeros(0, 1)


def check_job(model: nn.Module, layer: str, channels: Sequence[int], renders: np.ndarray, names: Sequence[str],
              settings: RenderSettings, options: TrustOptions, natural: Natural | None, load: ImageLoader | None,
              seeds: tuple[np.ndarray, list[int]], analysed: Sequence[str] | None,
              device: torch.device | str = "cpu", model_name: str = "the model") -> dict:
    """The layer record: the path check of each render (``renders[i]`` shows ``channels[i]``, named
    ``names[i]``) and the seed stability of each channel (``seeds``: the seed renders, channel-major,
    and their seeds). ``natural`` is None when the features stage did not run on the layer."""
    model, device = model.eval(), torch.device(device)
    shape = (1, *render_inputs(renders[:1], settings).shape[1:])
    probe = path.probe_layers(model, layer, shape, analysed if options.probe_layers == "analysed" else None)
    layers = list(probe.layers)
    drawn = render_vectors(model, renders, settings, layers, device)
    seed_images, seed_list = seeds
    seed_drawn = render_vectors(model, seed_images, settings, layers, device)
    per_channel = len(seed_list) // max(len(set(channels)), 1)
    selected, vectors = {}, {}
    if natural is not None:
        selected = {c: unit_images(natural.maxima, c, options) for c in sorted(set(channels))}
        wanted = [i for top, ref, _ in selected.values() for i in (*top, *ref)]
        vectors = natural_vectors(model, load, wanted, layers, device)
    units: dict[int, dict] = {}
    for at, c in enumerate(sorted(set(channels))):
        rows = slice(at * per_channel, (at + 1) * per_channel)
        picked = {name: seed_drawn[name][rows] for name in layers}
        others = {name: torch.cat([seed_drawn[name][:rows.start], seed_drawn[name][rows.stop:]]) for name in layers}
        unit = {"channel": c, "checks": []}
        top_v = ref_v = None
        if natural is not None:
            top, ref, label = selected[c]
            top_v = {name: _stack(vectors, top, name) for name in layers}
            ref_v = {name: _stack(vectors, ref, name) for name in layers}
            unit.update(dataset=natural.dataset, top_images=[int(i) for i in top],
                        reference_images=[int(i) for i in ref],
                        top_activations=[float(natural.maxima[i, c]) for i in top])
        for i, name in enumerate(names):
            if channels[i] != c:
                continue
            if natural is None:
                check = {"render": name, "status": "no_features", "verdict": "no path check",
                         "score": None, "notes": [missing_features(model_name, layer)]}
            else:
                one = {n: drawn[n][i:i + 1] for n in layers}
                result = path.check_vectors(layer, c, probe, one, top_v, ref_v, unit["top_activations"], label,
                                            options.k, options.threshold)
                check = {"render": name, **result.to_dict()}
            unit["checks"].append(check)
        stability = seed_stability(layers, picked, seed_list[rows], top_v, ref_v, others)
        unit["seed_stability"] = stability.to_dict()
        units[c] = unit
    return {
        "layer": layer,
        "probe_layers": layers,
        "probe_rule": probe.rule,
        "k": options.k,
        "reference": options.reference if options.reference == "bottom" else f"random (seed {options.seed})",
        "threshold": options.threshold,
        "dataset": natural.dataset if natural is not None else None,
        "missing": None if natural is not None else missing_features(model_name, layer),
        "seeds_per_unit": per_channel,
        "units": [units[c] for c in sorted(units)],
    }


def unit_records(record: Mapping, model: str, job: str) -> dict[int, dict]:
    """One small record per unit, for its gallery page: the unit's numbers and the layer's context."""
    context = {k: record[k] for k in ("layer", "probe_layers", "probe_rule", "k", "reference", "threshold",
                                      "dataset", "missing", "seeds_per_unit")}
    return {u["channel"]: {"model": model, "job": job, **context, **u} for u in record["units"]}
