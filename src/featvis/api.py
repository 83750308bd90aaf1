"""featvis in a notebook: one call for each thing the pipeline does per figure, on any torch model.

>>> import featvis.api as fv
>>> model = fv.load("efficientnet_lite0")                 # or any nn.Module (see `load`)
>>> image = fv.render_unit(model, "_blocks.10", channel=3, steps=64)
>>> patches = fv.top_patches(model, "photos/", "_blocks.10", channels=[3], k=9)
>>> heat, label = fv.grad_cam(model, "photo.jpg", "_blocks.15")
>>> scores = fv.protein_importance("EVQLVESGGGLVQPGG")     # AntiBERTy, offline

Each function returns numpy arrays (images as uint8 RGB, H x W x 3) that ``matplotlib``'s
``imshow`` shows as they are. The workflow runs the same library code at scale, with caching,
sharding and the gallery (``docs/notebook.ipynb`` runs every example here on shipped data).
Nothing downloads: models come from ``featvis.vision.models`` (weights on disk or ``weights:
random``) and proteins from ``featvis.protein.models`` (AntiBERTy ships its weights on PyPI).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from featvis.vision.models import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Preprocess, load_model

ModelLike = LoadedModel | nn.Module | str | Mapping[str, Any]


def load(model: ModelLike, image_size: int | None = None) -> LoadedModel:
    """A model with its preprocessing: a name (``"efficientnet_lite0"``, ``"resnet18"``,
    ``"timm:vit_tiny_patch16_224"``), a config spec (``{"architecture": ..., "weights": ...}``),
    or your own ``nn.Module`` (ImageNet normalization at 224 px, or ``image_size``)."""
    if isinstance(model, LoadedModel):
        return model
    if isinstance(model, nn.Module):
        size = image_size or 224
        return LoadedModel(type(model).__name__, model.eval(), Preprocess(size, IMAGENET_MEAN, IMAGENET_STD))
    spec = {"architecture": model} if isinstance(model, str) else dict(model)
    if image_size:
        spec["image_size"] = image_size
    return load_model(spec)


def render_unit(model: ModelLike, layer: str, channel: int, steps: int = 64, size: int = 128, seed: int = 0,
                device: str = "cpu", **settings: Any) -> np.ndarray:
    """Feature visualization of one channel (Olah et al. 2017): a ``size`` px image that
    maximises the channel's mean activation, from a Fourier parametrization with decorrelated
    colour and transformation robustness. ``settings`` are ``featvis.render.RenderSettings``
    fields (``param="laplacian"``, ``octaves=[(96, 32), (160, 32)]``, ...)."""
    from featvis.render import RenderSettings, render
    from featvis.render import objectives as obj

    loaded = load(model)
    p = loaded.preprocess
    chosen = RenderSettings(size=size, steps=steps, mean=tuple(p.mean), std=tuple(p.std), **settings)
    result = render(loaded.module, obj.channel(layer, [channel]), seeds=[seed], settings=chosen, device=device)
    return (np.asarray(result.images[0]) * 255).round().clip(0, 255).astype(np.uint8)


@dataclass
class Patches:
    """Top-K patches of a folder: ``patches[i][j]`` is channel ``channels[i]``'s j-th best patch
    (uint8 RGB, cut at the exact receptive field of the position where the channel peaked),
    ``values[i][j]`` its activation, ``paths[i][j]`` the image; ``field`` describes the field."""

    channels: list[int]
    patches: list[list[np.ndarray]]
    values: list[list[float]]
    paths: list[list[str]]
    field: str


def image_paths(folder: str | os.PathLike) -> list[str]:
    """A folder's images, sorted: ``<folder>/<class>/<image>`` (as the pipeline lists it) or, when
    the folder has no class sub-folders, the images directly in it."""
    from featvis.vision.listing import IMAGE_SUFFIXES, ManifestError, folder_rows

    try:
        return folder_rows(folder)["path"].tolist()
    except ManifestError:
        found = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise
        return found


def top_patches(model: ModelLike, images: str | os.PathLike | Sequence[str], layer: str,
                channels: Sequence[int] = (0,), k: int = 9, batch_size: int = 32, device: str = "cpu") -> Patches:
    """The ``k`` images that activate each channel most, each cut at the exact receptive field
    of its best position (padding and borders taken into account), from a folder or a list."""
    from featvis.vision.mining import mine_topk
    from featvis.vision.patches import describe_field, topk_patches
    from featvis.vision.receptive import ReceptiveFields

    loaded = load(model)
    paths = list(images) if not isinstance(images, str | os.PathLike) else image_paths(images)
    topk = mine_topk(loaded, paths, [layer], k, torch.device(device), batch_size=batch_size, progress=False)[layer]
    p = loaded.preprocess
    field = ReceptiveFields(loaded.module, p.input_shape(), [layer]).layer_field(layer)
    cut = topk_patches(topk, field, paths, p.image_size, p.channels, list(channels), p.interpolation, p.crop_pct)
    return Patches(list(channels), [[_rgb(patch) for patch in row] for row in cut],
                   [[float(v) for v in topk["value"][c]] for c in channels],
                   [[paths[int(i)] for i in topk["image"][c]] for c in channels], describe_field(field))


def grad_cam(model: ModelLike, image: str | os.PathLike, layer: str, target: int | None = None,
             alpha: float = 0.5) -> tuple[np.ndarray, str]:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer`` for class ``target`` (the predicted class
    when ``None``): the image as the model saw it with the map blended in, and the class's name
    with its probability."""
    from featvis.vision.attribution import grad_cam as cam
    from featvis.vision.attribution import overlay
    from featvis.vision.data import model_image, to_tensor

    loaded = load(model)
    pixels = model_image(image, loaded.preprocess)
    batch = to_tensor([pixels], loaded.preprocess)
    maps, chosen, probability = cam(loaded.module, layer, batch, None if target is None else [target])
    names = loaded.preprocess.class_names
    name = names[int(chosen[0])] if names and int(chosen[0]) < len(names) else f"class {int(chosen[0])}"
    return overlay(_rgb(pixels), maps[0], alpha), f"{name} ({float(probability[0]):.1%})"


def protein_importance(sequence: str, model: str = "antiberty", seed: int = 0) -> np.ndarray:
    """Per-residue importance: the attention each residue receives, averaged over heads and
    layers (``docs/attention.md``). ``model``: ``antiberty`` (antibody chains, weights on PyPI),
    an ESM-2 name from the torch hub cache or a checkpoint path, or ``random:esm2_t6_8M_UR50D``
    (random weights: the mechanics only)."""
    from featvis.protein.attention import summarize
    from featvis.protein.models import load_protein_model

    lm = load_protein_model(model, seed=seed)
    with torch.no_grad():
        return summarize(lm, sequence).importance("mean")


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3): greyscale repeated, alpha dropped."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[..., :3].astype(np.uint8)
