"""Feature accentuation (Hamblin, Fel, Saha, Konkle and Alvarez 2024, "Feature Accentuation:
Revealing 'What' Features Respond to in Natural Images"): start a render from a natural image
instead of noise and change it, a little, so that the unit responds more.

The seed image is loaded into the render's parametrization by inverting it (Fourier spectrum,
colour decorrelation and sigmoid: ``ImageParam.load_images``), so the first step starts from
the photo itself. Each item maximises its unit at the position where the photo excites it most
(the position the patches stage ranked it by), divided by the unit's activation on its best
seed so that one ``pull`` weight suits every layer. An L2 pull keeps the image near the seed:

    loss_i = -a_i(x_i) / scale_unit + pull * mean((x_i - seed_i)^2)      (pixels in [0, 1])

Every unit x patch of a layer is one item of one batch: one forward and one backward per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from featvis.core.hooks import capture, run_to_layers
from featvis.render.objectives import Objective, _range_check
from featvis.render.optimize import RenderSettings, render
from featvis.render.params import PARAMS
from featvis.render.transforms import derive_seed

# The default pull: an RMS pixel change of 1 / sqrt(1000), about 3% of the brightness range, costs as much
# as the unit's response to its best seed. On EfficientNet-Lite0 _blocks.10 (12 steps, 3 photos) it held the
# change to 3.1% (5.2% at pull 1) for a median gain of 3.4x (3.5x at pull 1).
PULL = 1000.0
# Parametrizations whose ``load_images`` is an exact inverse (MACO keeps a fixed magnitude,
# so it cannot start from an arbitrary photo).
INVERTIBLE_PARAMS = ("fourier", "pixel", "laplacian")
# A shift of at most 2 px each way that keeps the image's size, so the unit's position still
# points at the same place: some robustness to translation (Hamblin et al. use crops and jitter).
ACCENT_TRANSFORMS = ({"name": "pad", "size": 2}, {"name": "jitter", "size": 4})


@dataclass(frozen=True)
class AccentSettings:
    """How to accentuate; the defaults are the config's (``render.accentuate``)."""

    steps: int = 10  # 3 photos x 10 steps cost about one 64-step render (benchmarks/results/accentuate_cost.md)
    lr: float = 0.05
    pull: float = PULL  # weight of the mean squared pixel distance from the seed
    param: str = "fourier"
    colour: Any = "imagenet"
    param_options: Mapping[str, Any] = field(default_factory=dict)
    transforms: Any = ACCENT_TRANSFORMS
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)

    def render_settings(self, size: tuple[int, int]) -> RenderSettings:
        if self.param not in INVERTIBLE_PARAMS:
            known = ", ".join(INVERTIBLE_PARAMS)
            raise ValueError(f"accentuation starts from a photo, so its parametrization must be invertible "
                             f"({known}); got {self.param!r}" + (" (unknown)" if self.param not in PARAMS else ""))
        if size[0] != size[1]:
            raise ValueError(f"accentuation needs square seed images, got {size[0]}x{size[1]}")
        return RenderSettings(size=size[0], steps=max(int(self.steps), 1), lr=self.lr, param=self.param,
                              param_options=dict(self.param_options), colour=self.colour,
                              transforms=self.transforms, snapshots=(), mean=tuple(self.mean), std=tuple(self.std))


@dataclass(frozen=True)
class Target:
    """One item: a unit (channel) at a position of its layer's grid, seeded by one image."""

    channel: int
    y: int
    x: int
    rank: int = 0  # the seed's place among the unit's top images (0 = best)


@dataclass
class Accentuation:
    images: np.ndarray  # (B, H, W, 3) in [0, 1]: the accentuated images
    seeds: np.ndarray  # (B, H, W, 3): the seed images
    before: np.ndarray  # (B,): the unit's activation at its position on the seed
    after: np.ndarray  # (B,): the same on the accentuated image
    distance: np.ndarray  # (B,): root mean squared pixel change ([0, 1] scale)
    transparency: np.ndarray  # (B, H, W): accumulated |gradient| on the pixels
    trace: np.ndarray  # (steps, B): the normalised objective per step (under the transforms)


def unit_at(layer: str, targets: Sequence[Target]) -> Objective:
    """Item i's channel at its own position (y_i, x_i); a layer without positions ((N, C): a classifier,
    a transformer's class token) gives the channel itself."""
    channels = torch.tensor([t.channel for t in targets])
    ys, xs = torch.tensor([t.y for t in targets]), torch.tensor([t.x for t in targets])

    def fn(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        act = acts[layer]
        index = torch.arange(act.shape[0], device=act.device)
        if act.dim() == 2:
            return act[index, channels.to(act.device)]
        return act[index, channels.to(act.device), ys.to(act.device), xs.to(act.device)]

    return Objective(fn, [layer], f"unit_at({layer})", [_range_check(layer, channels.tolist(), "channel")])


@torch.no_grad()
def unit_activations(model: nn.Module, layer: str, targets: Sequence[Target], images: np.ndarray,
                     settings: AccentSettings, device: str | torch.device = "cpu") -> np.ndarray:
    """Each target's activation on its image as the model sees it (no transforms)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float32).permute(0, 3, 1, 2).to(device)
    channels = len(settings.mean)
    if channels == 1:
        x = x.mean(1, keepdim=True)
    mean = torch.tensor(settings.mean, device=device).reshape(1, -1, 1, 1)
    std = torch.tensor(settings.std, device=device).reshape(1, -1, 1, 1)
    objective = unit_at(layer, targets)
    with capture(model, [layer], stop_early=True) as acts:
        run_to_layers(model.eval(), (x - mean) / std, acts)
        objective.check(acts)
        return objective(acts).float().cpu().numpy()


def seed_items(seed: int, layer: str, targets: Sequence[Target]) -> list[int]:
    """Each item's seed (its transforms), from what it shows, not from its place in the batch."""
    return [derive_seed(seed, "accentuate", layer, t.channel, t.rank) for t in targets]


def accentuate(model: nn.Module, layer: str, targets: Sequence[Target], images: np.ndarray,
               settings: AccentSettings = AccentSettings(), seed: int = 0,
               device: str | torch.device = "cpu", progress: bool = False) -> Accentuation:
    """Accentuate ``targets`` (one per image of ``images``, (B, H, W, 3) in [0, 1]) in one batch.

    With ``steps == 0`` the seeds come back unchanged (activation after = before, distance 0).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(targets):
        raise ValueError(f"need one (H, W, 3) image per target: {len(targets)} targets, images {images.shape}")
    if settings.steps < 0:
        raise ValueError(f"steps must be 0 or more, got {settings.steps}")
    render_settings = settings.render_settings(images.shape[1:3])
    before = unit_activations(model, layer, targets, images, settings, device)
    if settings.steps == 0:
        zeros = np.zeros(len(targets), dtype=np.float32)
        return Accentuation(images.copy(), images, before, before.copy(), zeros,
                            np.zeros(images.shape[:3], dtype=np.float32), np.zeros((0, len(targets)), np.float32))
    anchor = torch.as_tensor(images).permute(0, 3, 1, 2).to(device)
    objective = unit_at(layer, targets) * _unit_scales(targets, before)

    def pull(image: torch.Tensor) -> torch.Tensor:
        return settings.pull * (image - anchor).square().flatten(1).mean(1)

    result = render(model, objective, seed_items(seed, layer, targets), render_settings, device=device,
                    init=images, progress=progress, penalty=pull)
    after = unit_activations(model, layer, targets, result.images, settings, device)
    distance = np.sqrt(np.square(result.images - images).reshape(len(images), -1).mean(1))
    return Accentuation(result.images, images, before, after, distance, result.transparency, result.trace)


def _unit_scales(targets: Sequence[Target], before: np.ndarray) -> list[float]:
    """1 / (the unit's largest |activation| over its seeds), so the objective starts near 1 for
    every layer and ``pull`` means the same everywhere; 1 for a unit that is silent on all seeds."""
    largest: dict[int, float] = {}
    for t, value in zip(targets, before, strict=True):
        largest[t.channel] = max(largest.get(t.channel, 0.0), abs(float(value)))
    return [1.0 / largest[t.channel] if largest[t.channel] > 0 else 1.0 for t in targets]


def top_targets(topk: Mapping[str, np.ndarray], channels: Sequence[int], patches: int
                ) -> tuple[list[Target], list[int]]:
    """The first ``patches`` top images of each channel from a patches-stage table (``image``, ``y``,
    ``x``, ``value``: (C, K)), as targets and their manifest rows. A unit with fewer top images (a
    dataset smaller than K) gets what there is."""
    targets, rows = [], []
    for c in channels:
        for rank in range(min(int(patches), topk["image"].shape[1])):
            if int(topk["image"][c, rank]) < 0:  # the miner's filler for "no image"
                break
            targets.append(Target(int(c), int(topk["y"][c, rank]), int(topk["x"][c, rank]), rank))
            rows.append(int(topk["image"][c, rank]))
    return targets, rows
