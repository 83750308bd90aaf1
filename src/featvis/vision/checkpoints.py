"""Weights files: found, read and fitted to an architecture, every problem named with its fix.

A checkpoint is read once into a state dict (a plain one, or one wrapped as ``state_dict``,
``model_state_dict`` or ``model``, with DataParallel's ``module.`` prefix dropped), and the
architecture is fitted to it before loading: a fine-tuned classifier head of another size is
read off the file (:func:`head_rows`), so a ResNet-18 trained on 5 classes loads as one.
Whatever still does not fit is an error that says what and how to fix it: a missing file (and
where it was looked for), a truncated or corrupt one, one saved from another architecture (its
first mismatched keys and shapes), another head size (set ``num_classes``), a pickled module
whose class lived in the script that saved it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]
WRAPPERS = ("state_dict", "model_state_dict", "model")  # keys training scripts nest a state dict under
SHOWN = 3  # mismatched keys named in a message


class MissingWeightsError(FileNotFoundError):
    """The weights file a model needs is not on this machine; ``file`` and ``looked_in``
    say which file and where it was looked for (empty when no file was named)."""

    def __init__(self, message: str, file: str | None = None, looked_in: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.file, self.looked_in = file, looked_in

    def __str__(self) -> str:
        return str(self.args[0])


class CheckpointError(ValueError):
    """A weights file that is there but cannot be used as it is; the message names the fix."""


class UnreadableCheckpointError(CheckpointError):
    """Truncated, corrupt, or not a torch checkpoint at all."""


class PickledObjectError(CheckpointError):
    """Pickled Python objects (a whole saved model), which a plain state-dict read refuses to run."""


class ArchitectureMismatchError(CheckpointError):
    """Saved from another architecture: keys or shapes differ beyond the classifier head."""


class HeadSizeError(CheckpointError):
    """The classifier head's size disagrees with ``num_classes`` or ``class_names``."""


def require_file(path: str | os.PathLike, what: str, looked_in: list[str] | None = None) -> Path:
    path = Path(path).expanduser()
    if path.is_file():
        return path
    where = tuple(looked_in or [str(path.parent.resolve())])
    raise MissingWeightsError(
        f"{what}: weights file {path.name!r} not found; looked in: {', '.join(where)}. "
        "This machine cannot download weights: copy the file there or set `weights:` to its path.",
        path.name, where,
    )


def file_digest(path: str | os.PathLike | None) -> str | None:
    """The sha256 of a weights file: what every stage's cache keys on, so a replaced file reruns them."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


# --- reading ------------------------------------------------------------------------------


def read_state_dict(path: Path, what: str) -> StateDict:
    """The state dict in a weights file (``.safetensors`` or a torch checkpoint), never running its code."""
    if path.suffix == ".safetensors":
        return _read_safetensors(path, what)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise _unreadable(path, what, error) from None
        raise PickledObjectError(
            f"{what}: {path} holds pickled Python objects (a whole saved model?), not a state dict. Save the "
            "weights with torch.save(model.state_dict(), path), or load the whole model with "
            "`architecture: module` (and `builder:` naming its class)") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        raise _unreadable(path, what, error) from None
    return state_dict_of(content, path, what)


def read_pickled_module(path: Path, what: str, main: ModuleType | None = None) -> Any:
    """A whole pickled model (``torch.save(model)``). This runs code from the file: only for files
    the user made. Classes pickled from a script (``__main__``) are looked up in ``main``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_redirecting_pickle(main))
    except AttributeError as error:
        if "__main__" not in str(error):
            raise
        found = re.search(r"attribute '(\w+)'", str(error))  # "Can't get attribute 'Net' on <module '__main__'>"
        name = found.group(1) if found else "ClassName"
        raise CheckpointError(
            f"{what}: {path} is a whole model pickled from a script: its class {name!r} was defined in that script "
            f"(__main__), which is not running here. Name where the class is: `builder: path/to/script.py:{name}` "
            f"(the class or a function returning the model; a script's module-level code must be under "
            f"`if __name__ == \"__main__\":`), or save the weights instead: torch.save(model.state_dict(), path) "
            f"and `builder:` as before") from None
    except ModuleNotFoundError as error:
        raise CheckpointError(
            f"{what}: {path} is a pickled model whose class lives in module {error.name!r}, which cannot be "
            f"imported here: install it, put it on PYTHONPATH, or name the class with `builder:`") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise _unreadable(path, what, error) from None


def _redirecting_pickle(main: ModuleType | None) -> SimpleNamespace:
    """A pickle module for torch.load whose unpickler finds ``__main__`` classes in ``main``."""

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if module == "__main__" and main is not None and hasattr(main, name):
                return getattr(main, name)
            return super().find_class(module, name)

    return SimpleNamespace(Unpickler=Unpickler, load=pickle.load, __name__="pickle")


def _read_safetensors(path: Path, what: str) -> StateDict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as error:  # safetensors raises its own SafetensorError, and OSError
        raise _unreadable(path, what, error) from None


def _unreadable(path: Path, what: str, error: BaseException) -> UnreadableCheckpointError:
    size = path.stat().st_size if path.exists() else 0
    return UnreadableCheckpointError(
        f"{what}: {path} ({size:,} bytes) cannot be read: it is truncated, corrupt or not a torch "
        f"checkpoint ({type(error).__name__}: {first_line(error)}). Copy or save it again")


def first_line(error: BaseException) -> str:
    """An error's message, first line only (its type where it has none), for one-line reports."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def state_dict_of(content: Any, path: Path, what: str) -> StateDict:
    """Unwrap a training checkpoint to its state dict."""
    if isinstance(content, nn.Module):
        return content.state_dict()
    if isinstance(content, Mapping):
        for key in WRAPPERS:
            if isinstance(content.get(key), Mapping):
                return state_dict_of(content[key], path, what)
        if content and all(isinstance(v, torch.Tensor) for v in content.values()):
            return _unprefixed(dict(content))
    keys = list(content)[:5] if isinstance(content, Mapping) else []
    raise CheckpointError(f"{what}: {path} holds a {type(content).__name__}"
                          f"{f' with keys {keys}' if keys else ''}, not a state dict of tensors; "
                          f"save torch.save(model.state_dict(), path)")


def _unprefixed(state: StateDict) -> StateDict:
    """DataParallel and DistributedDataParallel save every key under ``module.``."""
    if all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


# --- the classifier head ----------------------------------------------------------------


def classifier_name(module: nn.Module) -> str | None:
    """The module name of the classifier head: timm's own, else the last ``nn.Linear``."""
    names = {id(m): n for n, m in module.named_modules()}
    get = getattr(module, "get_classifier", None)
    if callable(get):
        head = get()
        if isinstance(head, nn.Linear) and id(head) in names:
            return names[id(head)]
    linear = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    return linear[-1] if linear else None


def head_rows(module: nn.Module, state: Mapping[str, torch.Tensor]) -> int | None:
    """Outputs of the classifier head as ``state`` has it (``None``: no head found there)."""
    name = classifier_name(module)
    weight = state.get(f"{name}.weight") if name else None
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def fit_head(build: Callable[[int | None], nn.Module], num_classes: int | None, state: StateDict | None) -> nn.Module:
    """Build the architecture with ``num_classes`` outputs, or as many as the file's head has."""
    module = build(num_classes)
    if num_classes is not None or state is None:
        return module
    rows = head_rows(module, state)
    if rows is None or rows == head_rows(module, module.state_dict()):
        return module
    return build(rows)  # a fine-tuned head: its size is in the file


# --- loading ------------------------------------------------------------------------------


def _wanted_classes(spec: Mapping[str, Any], state: Mapping | None) -> int | None:
    """The head size asked for: ``num_classes``, else (with no file to read it from) one per class name."""
    if spec.get("num_classes") is not None:
        return int(spec["num_classes"])
    if state is None and spec.get("class_names"):
        return len(spec["class_names"])
    return None


def load_fitted(build: Callable[[int | None], nn.Module], spec: Mapping[str, Any], path: Path | None,
                what: str) -> nn.Module:
    """``build(num_classes)`` sized to the spec or the file's head, with the file's weights loaded."""
    state = None if path is None else read_state_dict(path, what)
    module = fit_head(build, _wanted_classes(spec, state), state)
    if state is not None:
        load_weights(module, state, path, what)
    return module


def load_weights(module: nn.Module, state: StateDict, path: Path, what: str) -> None:
    """Load ``state`` into ``module``; a mismatch says whether it is the head or the whole architecture."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    reshaped = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if not (missing or unexpected or reshaped):
        module.load_state_dict(state, strict=False)  # strict apart from old BatchNorm counters
        return
    head = classifier_name(module)
    if not missing and not unexpected and set(reshaped) <= {f"{head}.weight", f"{head}.bias"}:
        rows, built = state[f"{head}.weight"].shape[0], own[f"{head}.weight"].shape[0]
        raise HeadSizeError(f"{what}: the classifier head {head!r} in {path} has {rows} outputs, but the model was "
                            f"built with {built}: set `num_classes: {rows}` in the model's config (or leave "
                            f"num_classes out: featvis reads the head size from the file)")
    raise ArchitectureMismatchError(f"{what}: {path} does not fit this architecture; is it a checkpoint of "
                                    f"another one? {_mismatch(missing, unexpected, reshaped, state, own)}. Set "
                                    "`architecture:` to the one it was saved from")


def _mismatch(missing: list[str], unexpected: list[str], reshaped: list[str], state: Mapping, own: Mapping) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's keys are not in the file (first: {', '.join(missing[:SHOWN])})")
    if unexpected:
        parts.append(f"{len(unexpected)} keys in the file are not in the model "
                     f"(first: {', '.join(unexpected[:SHOWN])})")
    if reshaped:
        shapes = "; ".join(f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
                           for k in reshaped[:SHOWN])
        parts.append(f"{len(reshaped)} shapes differ ({shapes})")
    return ", ".join(parts)


def check_class_names(module: nn.Module, class_names: tuple[str, ...] | None, what: str) -> None:
    """``class_names`` must name every output of the head."""
    rows = head_rows(module, module.state_dict())
    if class_names and rows is not None and len(class_names) != rows:
        raise HeadSizeError(f"{what}: `class_names` lists {len(class_names)} names but the classifier head has "
                            f"{rows} outputs: give one name per output, in the order the model was trained with "
                            f"(or set `num_classes: {len(class_names)}` if the head should have that size)")
