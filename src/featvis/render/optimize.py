"""The batched render loop: one Adam optimisation over a batch of images.

Every item of the batch is its own render (own objective term, own seed for its
starting image and for its transforms), so a whole layer of channels shares one
forward/backward per step. The forward stops at the deepest layer the objective reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featvis.core.hooks import capture, get_layer, run_to_layers
from featvis.core.progress import tracked
from featvis.render.fuse import prepare_model
from featvis.render.objectives import Objective
from featvis.render.params import ImageParam, make_param
from featvis.render.regularizers import Penalties
from featvis.render.transforms import Compose, ItemRng, Resize, build_transforms


@dataclass(frozen=True)
class RenderSettings:
    """How to render; every field has a default that makes a Distill-style render."""

    size: int = 128
    steps: int = 64
    lr: float = 0.05
    param: str = "fourier"
    param_options: Mapping[str, Any] = field(default_factory=dict)
    colour: Any = "imagenet"  # "imagenet", "none" or a 3x3 matrix (e.g. from the dataset)
    transforms: Any = "standard"  # "standard", "none" or a list of {"name": ..., ...}
    regularizers: Sequence[Mapping[str, Any]] = ()
    octaves: Sequence[tuple[int, int]] = ()  # (size, steps) pairs; overrides size and steps
    input_size: int | tuple[int, int] | None = None  # resample to the model's input size after transforms
    snapshots: Sequence[int] = ()  # steps (1-based) at which to keep a copy of the images
    mean: Sequence[float] = (0.485, 0.456, 0.406)
    std: Sequence[float] = (0.229, 0.224, 0.225)
    fold_batchnorm: bool = True

    def replace(self, **changes: Any) -> RenderSettings:
        return dataclasses.replace(self, **changes)

    def schedule(self) -> list[tuple[int, int]]:
        """(size, steps) for each octave; a plain render is one octave."""
        plan = [tuple(o) for o in self.octaves] or [(self.size, self.steps)]
        for size, steps in plan:
            if int(steps) <= 0:
                raise ValueError(f"steps must be a positive integer, got {steps}")
            if int(size) <= 0:
                raise ValueError(f"image size must be a positive integer, got {size}")
        return [(int(s), int(n)) for s, n in plan]


@dataclass
class RenderResult:
    images: np.ndarray  # (B, H, W, 3) float32 in [0, 1]
    trace: np.ndarray  # (steps, B): objective per step, before that step's update
    final: np.ndarray  # (B,): objective on the final image without transforms
    params: dict[str, np.ndarray]  # raw parameters of the last octave
    snapshots: dict[int, np.ndarray]  # step -> (B, H, W, 3)
    activations: dict[str, np.ndarray]  # layer -> final-image activations (no transforms)
    seeds: list[int]
    # (B, H, W): |d loss / d pixel| summed over colours and steps (Horama's transparency map);
    # earlier octaves are upsampled to the final size before they are added
    transparency: np.ndarray | None = None


def _to_numpy(images: torch.Tensor) -> np.ndarray:
    return images.detach().permute(0, 2, 3, 1).float().cpu().numpy()


class _Pipeline:
    """Image -> transforms -> normalisation -> model (stopped early) -> objective."""

    def __init__(self, model: nn.Module, objective: Objective, settings: RenderSettings,
                 transforms: Compose, device: torch.device) -> None:
        self.model, self.objective, self.transforms = model, objective, transforms
        mean = torch.tensor(settings.mean, device=device).reshape(1, -1, 1, 1)
        std = torch.tensor(settings.std, device=device).reshape(1, -1, 1, 1)
        self.inv_std, self.shift = 1.0 / std, -mean / std  # (x - mean) / std as one fused op
        self.input_size = settings.input_size
        self.channels = len(settings.mean)
        self.grey = self.channels == 1  # one-channel models see the luminance of the render

    def activations(self, images: torch.Tensor, rng: ItemRng | None, acts: dict) -> dict:
        if rng is not None and self.channels == 3:  # normalisation fused into the transforms' last pass
            x = self.transforms(images, rng, post=(self.inv_std, self.shift))
        else:
            x = self.transforms(images, rng) if rng is not None else images
            size = _pair(self.input_size) if self.input_size else None
            if size and tuple(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            if self.grey:
                x = x.mean(1, keepdim=True)
            elif self.channels > 3:  # extra channels (e.g. alpha) see an opaque, constant 1
                x = torch.cat([x, x.new_ones(x.shape[0], self.channels - 3, *x.shape[2:])], 1)
            x = torch.addcmul(self.shift, x, self.inv_std)
        # no channels-last copy of the input: the first conv (channels-last weights) does that itself
        try:
            run_to_layers(self.model, x, acts)
        except RuntimeError as err:
            raise ValueError(
                f"the model failed on a {tuple(x.shape[1:])} input: {err}. If the image is small for "
                "this model, use a larger image size"
            ) from err
        return acts


def render(model: nn.Module, objective: Objective, seeds: Sequence[int],
           settings: RenderSettings = RenderSettings(), device: str | torch.device = "cpu",
           init: np.ndarray | None = None, progress: bool = False,
           callback: Callable[[int, torch.Tensor], None] | None = None,
           penalty: Callable[[torch.Tensor], torch.Tensor] | None = None) -> RenderResult:
    """Render ``len(seeds)`` images at once, item i maximising term i of ``objective``.

    ``init`` (B, H, W, 3) in (0, 1) resumes from earlier images instead of noise. ``penalty``
    maps the images (B, 3, H, W) to a per-item cost added to the loss (accentuation's pull
    towards its seed image). The transparency map is read off the image gradient that the step
    computes anyway: no extra backward pass.
    """
    schedule = settings.schedule()
    device = torch.device(device)
    transforms = build_transforms(settings.transforms)
    if settings.input_size:  # fused into the same single resampling as the other transforms
        transforms.transforms.append(Resize(settings.input_size))
    for size, _ in schedule:
        transforms.check_size(size)
    for name in objective.layers:
        get_layer(model, name)
    net = prepare_model(model.to(device), keep=objective.layers, channels=len(settings.mean),
                        probe_size=_pair(settings.input_size or schedule[-1][0]), fold=settings.fold_batchnorm)
    penalties = Penalties(settings.regularizers)
    pipe = _Pipeline(net, objective, settings, transforms, device)
    rng = ItemRng(seeds)
    trace: list[torch.Tensor] = []
    snapshots: dict[int, np.ndarray] = {}
    wanted = set(settings.snapshots)
    images = None if init is None else torch.as_tensor(init, dtype=torch.float32).permute(0, 3, 1, 2)
    transparency: torch.Tensor | None = None
    with capture(net, objective.layers, detach=False, stop_early=True) as acts:
        for octave, (size, steps) in enumerate(schedule):
            param = _make_param(settings, seeds, size, images, device)
            optimizer = torch.optim.Adam(param.parameters(), lr=settings.lr)
            transparency = _resized(transparency, len(seeds), size, device)
            for _ in tracked(range(steps), steps, f"render octave {octave}", "steps", enabled=progress):
                optimizer.zero_grad(set_to_none=True)
                image = param()
                image.retain_grad()
                pipe.activations(image, rng, acts)
                if not trace:
                    objective.check(acts)
                scores = objective(acts)
                loss = -scores.sum()
                if penalties:
                    loss = loss + penalties(image).sum()
                if penalty is not None:
                    loss = loss + penalty(image).sum()
                loss.backward()
                transparency += image.grad.detach().abs().sum(1)
                optimizer.step()
                trace.append(scores.detach())
                if len(trace) in wanted:
                    snapshots[len(trace)] = _to_numpy(param())
                if callback is not None:
                    callback(len(trace), scores.detach())
            with torch.no_grad():
                images = param()
        with torch.no_grad():
            pipe.activations(images, None, acts)
            final = objective(acts)
            activations = {name: acts[name].float().cpu().numpy() for name in objective.layers}
    return RenderResult(
        images=_to_numpy(images),
        trace=torch.stack(trace).float().cpu().numpy(),
        final=final.float().cpu().numpy(),
        params={k: v.detach().cpu().numpy() for k, v in param.state_dict().items()},
        snapshots=snapshots,
        activations=activations,
        seeds=[int(s) for s in seeds],
        transparency=transparency.float().cpu().numpy(),
    )


def _resized(transparency: torch.Tensor | None, batch: int, size: int, device: torch.device) -> torch.Tensor:
    """The map so far at the next octave's size (zeros at the first)."""
    if transparency is None:
        return torch.zeros(batch, size, size, device=device)
    if tuple(transparency.shape[-2:]) == (size, size):
        return transparency
    return F.interpolate(transparency[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]


def _make_param(settings: RenderSettings, seeds: Sequence[int], size: int,
                images: torch.Tensor | None, device: torch.device) -> ImageParam:
    options = {"colour": settings.colour, **dict(settings.param_options)}
    param = make_param(settings.param, seeds, size, **options).to(device)
    if images is not None:
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        param.load_images(images.to(device))
    return param


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
