"""The renders behind each figure of the Distill article, each one batched job.

Every item's seed is derived from the job's base seed and what the item shows
(layer, channel, copy ...), never from its position in the batch, so adding a
channel to a job does not change the others' starting images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from featvis.render import objectives as obj
from featvis.render.optimize import RenderResult, RenderSettings, render
from featvis.render.transforms import derive_seed


@dataclass
class Batch:
    """A finished batched render and what each of its items shows."""

    result: RenderResult
    names: list[str]  # one file-name stem per item
    channels: list[int | None]  # the channel each item shows (None for mixtures)


def render_channels(model: nn.Module, layer: str, channels: Sequence[int], settings: RenderSettings,
                    seed: int = 0, copies: int = 1, diversity: float = 0.0, device: str = "cpu",
                    progress: bool = False) -> Batch:
    """Every channel x ``copies`` in one batch; copies of a channel are pushed apart by ``diversity``."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    items = [(int(c), k) for c in channels for k in range(copies)]
    wanted = [c for c, _ in items]
    objective = obj.channel(layer, wanted)
    if copies > 1 and diversity:
        objective = objective + diversity * obj.diversity(layer, groups=wanted)
    seeds = [derive_seed(seed, layer, c, k) for c, k in items]
    result = render(model, objective, seeds, settings, device=device, progress=progress)
    return Batch(result, [f"channel{c:04d}_copy{k}" for c, k in items], wanted)


def render_objectives(model: nn.Module, objectives: Mapping[str, obj.Objective], settings: RenderSettings,
                      seed: int = 0, device: str = "cpu", progress: bool = False) -> Batch:
    """Item name -> objective, all in one batch: item i maximises objective i.

    Each item's seed comes from its name, so adding or removing items leaves the others alone.
    """
    names = list(objectives)
    seeds = [derive_seed(seed, "objective", name) for name in names]
    result = render(model, obj.stack(list(objectives.values())), seeds, settings, device=device, progress=progress)
    return Batch(result, names, [None] * len(names))


def render_addition(model: nn.Module, layer: str, pairs: Sequence[tuple[int, int]],
                    settings: RenderSettings, seed: int = 0, device: str = "cpu") -> Batch:
    """Neuron addition: for each pair (a, b) the renders a, a + b and b, in one batch."""
    objectives, names, channels, seeds = [], [], [], []
    for a, b in pairs:
        ca, cb = obj.channel(layer, int(a)), obj.channel(layer, int(b))
        objectives += [ca, ca + cb, cb]
        names += [f"channel{a:04d}", f"channel{a:04d}_plus_{b:04d}", f"channel{b:04d}"]
        channels += [a, None, b]
        # a and b alone start from the same image as their sum, so the figure compares like with like
        seeds += [derive_seed(seed, layer, a, b)] * 3
    result = render(model, obj.stack(objectives), seeds, settings, device=device)
    return Batch(result, names, channels)


def render_interpolation(model: nn.Module, layer: str, a: int, b: int, frames: int,
                         settings: RenderSettings, seed: int = 0, alignment: float = 0.01,
                         shared_lowres: Sequence[int] = (4, 8), device: str = "cpu") -> Batch:
    """Frames from channel ``a`` to ``b``, kept alike by alignment and shared low-res parts."""
    objective = obj.interpolate(obj.channel(layer, int(a)), obj.channel(layer, int(b)), frames)
    if alignment:
        objective = objective + alignment * obj.alignment(layer)
    options = {**dict(settings.param_options), "shared_lowres": tuple(shared_lowres)}
    seeds = [derive_seed(seed, layer, a, b, "frame", i) for i in range(frames)]
    result = render(model, objective, seeds, settings.replace(param_options=options), device=device)
    return Batch(result, [f"frame{i:02d}" for i in range(frames)], [None] * frames)


# Olah et al. 2017, "the enemy of feature visualization": the same steps under four regimes.
REGULARIZATION_REGIMES: dict[str, dict] = {
    "none": {"param": "pixel", "colour": "none", "transforms": "none", "regularizers": ()},
    "frequency penalty": {
        "param": "pixel", "colour": "none", "transforms": "none",
        # Weights are against a channel mean of order 10-100: smaller ones leave the noise untouched.
        "regularizers": ({"name": "tv", "weight": 750.0}, {"name": "blur", "weight": 3000.0},
                         {"name": "l1", "weight": 10.0}),
    },
    "transformation robustness": {"param": "pixel", "colour": "none", "transforms": "standard",
                                  "regularizers": ()},
    "preconditioning": {"param": "fourier", "colour": "imagenet", "transforms": "standard",
                        "regularizers": ()},
}


def render_regularization_comparison(model: nn.Module, layer: str, channels: Sequence[int],
                                     settings: RenderSettings, seed: int = 0,
                                     device: str = "cpu") -> dict[str, Batch]:
    """One batch per regime, same channels, seeds, steps and size."""
    out = {}
    for regime, changes in REGULARIZATION_REGIMES.items():
        out[regime] = render_channels(model, layer, channels, settings.replace(**changes), seed=seed,
                                      device=device)
    return out
