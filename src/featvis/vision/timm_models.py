"""timm models by name: ``architecture: timm:<name>``.

The architecture is built by timm with ``pretrained=False`` (timm never downloads here);
weights come from ``weights:`` (a state dict or ``.safetensors`` file) or from the
Hugging Face hub cache, where timm's own download would have put them. Preprocessing
(input size, mean, std, interpolation, crop_pct) is read from the model's pretrained config, class
names from timm's ImageNet metadata where the classes are an ImageNet subset.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from featvis.core.names import unknown
from featvis.vision.checkpoints import MissingWeightsError, load_fitted, require_file
from featvis.vision.model_spec import UnknownModelError, is_stand_in
from featvis.vision.preprocess import INTERPOLATIONS, Preprocess, fit_channels, imagenet_class_names

PREFIX = "timm:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_timm(arch: Any) -> bool:
    return isinstance(arch, str) and arch.startswith(PREFIX)


def build_timm(arch: str, spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    """``(module with weights loaded, Preprocess, weights path)`` for ``timm:<name>``; a fine-tuned
    head's size comes from the file (or ``num_classes``)."""
    import timm

    name = arch[len(PREFIX):]
    if not timm.is_model(name):
        raise UnknownModelError(f"{unknown('timm model', name, timm.list_models())}; timm.list_models() lists them all")
    kwargs = _build_kwargs(name, spec)

    def build(num_classes: int | None) -> nn.Module:
        return timm.create_model(name, pretrained=False, **kwargs, **({} if num_classes is None else
                                                                        {"num_classes": num_classes}))

    path = _weights_path(arch, name, spec)
    module = load_fitted(build, spec, path, arch)
    cfg = module.pretrained_cfg
    size = tuple(cfg["input_size"][1:])
    preprocess = Preprocess(
        size[0] if size[0] == size[1] else size, tuple(cfg["mean"]), tuple(cfg["std"]), int(cfg["input_size"][0]),
        _class_names(module), interpolation=_interpolation(arch, cfg, spec), crop_pct=float(cfg.get("crop_pct") or 1.0))
    return module, fit_channels(preprocess, module), None if path is None else str(path)


def _interpolation(arch: str, cfg: Mapping[str, Any], spec: Mapping[str, Any]) -> str:
    """The config's resize filter, else timm's; one PIL has no filter for fails naming the model."""
    value = spec.get("interpolation") or cfg.get("interpolation") or "bilinear"
    if value not in INTERPOLATIONS:
        raise ValueError(f"{arch}: timm's pretrained config asks for interpolation {value!r}, which featvis "
                         f"cannot resize with (one of {', '.join(INTERPOLATIONS)}); set `interpolation:` "
                         "in the model's config")
    return value


def _build_kwargs(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Channels and, for models built for one input size (ViTs), the size, from the spec."""
    import timm

    kwargs: dict[str, Any] = {}
    if spec.get("channels") is not None:
        kwargs["in_chans"] = int(spec["channels"])
    fixed = timm.models.get_pretrained_cfg(name)
    if spec.get("image_size") is not None and fixed is not None and fixed.fixed_input_size:
        size = spec["image_size"]
        kwargs["img_size"] = tuple(size) if isinstance(size, list) else int(size)
    return kwargs


def _weights_path(arch: str, name: str, spec: Mapping[str, Any]) -> Path | None:
    import timm

    if spec.get("allow_random", False) or is_stand_in(spec):
        return None
    if spec.get("weights"):
        return require_file(spec["weights"], arch)
    cfg = timm.models.get_pretrained_cfg(name)
    repo = cfg.hf_hub_id if cfg is not None else None
    if repo:
        from huggingface_hub import constants, try_to_load_from_cache

        for filename in WEIGHT_FILES:  # a cache lookup only: nothing is downloaded
            found = try_to_load_from_cache(repo, filename)
            if isinstance(found, str):
                return Path(found)
        looked = f"the Hugging Face hub cache {constants.HF_HUB_CACHE} (repository {repo})"
    else:
        looked = "no Hugging Face hub repository is known for it"
    raise MissingWeightsError(
        f"{arch}: weights file {WEIGHT_FILES[0]!r} not found; looked in: {looked}. This machine cannot "
        "download weights: copy the file there, set `weights:` to its path, or set `allow_random: true` "
        "for random weights (they show the mechanics only)")


def _class_names(module: nn.Module) -> tuple[str, ...]:
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(module)
    if subset is None:
        return ()
    if subset == "imagenet-1k":  # the same names as every other ImageNet model here
        return imagenet_class_names()
    info = ImageNetInfo(subset)
    return tuple(info.index_to_description(i).split(",")[0] for i in range(info.num_classes()))
