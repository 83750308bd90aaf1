"""Training the classifiers the pipeline makes for itself, deterministically, for any architecture
featvis loads (torchvision names, ``timm:<name>``, the built-ins).

The model is built as its spec says (input size, channels, mean and std), with seeded random
weights, and its classifier head is sized to the classes (:func:`fresh_head`); a ``weights:`` file
is where fine-tuning starts: every key that fits is loaded, a head of another size is not. Images
stream from the manifest through :func:`featvis.vision.data.iter_batches` (never a whole split in
memory), in a seeded order each epoch. The saved state dict loads with
``load_model({..., "num_classes": len(class_names), "weights": <file>})``.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from featvis.core.progress import Progress
from featvis.vision.checkpoints import classifier_name, first_line, read_state_dict
from featvis.vision.data import iter_batches
from featvis.vision.models import STAND_IN, LoadedModel, Preprocess, load_model
from featvis.vision.train_checks import HOLDOUT, TRAIN, splits_of, training_classes


class HeadError(ValueError):
    """An architecture whose classifier head featvis cannot find or resize."""


class StartWeightsError(ValueError):
    """A ``weights:`` file that does not fit the architecture being trained."""


# --- which images train ----------------------------------------------------------------


def holdout(labels: Sequence[str], fraction: float, seed: int) -> list[str]:
    """``train`` or ``val`` per row: ``round(fraction * n)`` of each class's n rows held out as ``val``
    (at least one, and never all: a class of one image only trains). Each class draws its own
    rows from a generator seeded by ``seed`` and the class name, so adding a class, or images of
    another class, leaves a class's split as it was."""
    if not 0 < fraction < 1:
        raise ValueError(f"split {fraction!r} must be strictly between 0 and 1")
    by_class: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_class.setdefault(label, []).append(row)
    splits = [TRAIN] * len(labels)
    for label, rows in by_class.items():
        held = min(max(math.floor(fraction * len(rows) + 0.5), 1), len(rows) - 1)
        generator = np.random.default_rng([seed, zlib.crc32(label.encode())])
        for position in generator.permutation(len(rows))[:held]:
            splits[rows[position]] = HOLDOUT
    return splits


def training_rows(manifest: pd.DataFrame, train: Mapping[str, Any], seed: int) -> pd.DataFrame:
    """The manifest with the split each image plays in training: its own, or the seeded hold-out
    of ``train.split`` over the whole dataset."""
    rows = manifest[["path", "label", "split"]].reset_index(drop=True)
    if train.get("split") is not None:
        rows = rows.assign(split=holdout(rows["label"].tolist(), train["split"], seed))
    return rows


# --- the model and its head -------------------------------------------------------------


def fresh_head(module: nn.Module, num_classes: int) -> str | None:
    """Give the model a fresh classifier head of ``num_classes`` outputs, drawn from torch's
    generator (so the config's seed sets it, whatever size the built head had). Returns the head's
    name (``None``: none found, which :func:`check_outputs` then refuses unless the model already
    gives that many scores)."""
    reset = getattr(module, "reset_classifier", None)
    if callable(reset):  # timm: its own way, which knows its pooling and head layout
        reset(num_classes)
        return classifier_name(module)
    name = classifier_name(module)
    if name is None:
        return None
    old = module.get_submodule(name)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                    device=old.weight.device, dtype=old.weight.dtype)
    parent, _, attribute = name.rpartition(".")
    setattr(module.get_submodule(parent), attribute, new)
    return name


def logits(output: Any) -> torch.Tensor:
    """The class scores of a forward pass (a model returning a tuple gives them first)."""
    return output if isinstance(output, torch.Tensor) else output[0]


def check_outputs(module: nn.Module, preprocess: Preprocess, head: str | None, num_classes: int,
                  architecture: str) -> None:
    """One probe at the model's input: it must give ``num_classes`` scores per image."""
    try:
        with torch.no_grad():
            shape = tuple(logits(module.eval()(torch.zeros(preprocess.input_shape()))).shape)
    except (RuntimeError, ValueError, TypeError, IndexError) as error:  # a resized layer the rest cannot take
        shape = f"none: the forward pass fails ({first_line(error)})"
    if shape == (1, num_classes):
        return
    if head is None:
        raise HeadError(f"featvis cannot train architecture {architecture}: it finds no classifier head (no "
                        f"nn.Linear, and it is not a timm model), and the model's scores have shape {shape}, not "
                        f"{num_classes} per image")
    raise HeadError(f"featvis cannot train architecture {architecture}: it resized {head!r} (the last nn.Linear) "
                    f"to {num_classes} outputs, but the model's scores then have shape {shape}, so that layer is "
                    "not its classifier head")


def training_model(spec: Mapping[str, Any], num_classes: int, seed: int,
                   name: str | None = None) -> tuple[LoadedModel, str | None]:
    """(the architecture of ``spec`` with seeded random weights (featvis's stand-in) and a head of
    ``num_classes`` outputs initialized from ``seed``, the head's name)."""
    build = {k: v for k, v in spec.items() if k != "train"}
    loaded = load_model({**build, "weights": STAND_IN, "num_classes": num_classes}, name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = fresh_head(loaded.module, num_classes)
    check_outputs(loaded.module, loaded.preprocess, head, num_classes, spec["architecture"])
    return loaded, head


def check_trainable(name: str, spec: Mapping[str, Any]) -> None:
    """Start check (run when the model's structure is probed): the head can be found and sized."""
    training_model(spec, int(spec["num_classes"]), seed=0, name=name)


def load_start_weights(module: nn.Module, path: str | Path, head: str | None) -> dict[str, Any]:
    """Load every key of the file that fits the model; the head's may differ (another class count),
    nothing else may. Returns what was loaded and what was skipped."""
    state, own = read_state_dict(Path(path), "train"), module.state_dict()
    fits = {key: value for key, value in state.items() if key in own and value.shape == own[key].shape}
    in_head = {key for key in own if head and key.startswith(f"{head}.")}
    missing = [key for key in own if key not in fits and key not in in_head
               and not key.endswith("num_batches_tracked")]
    if missing:
        raise StartWeightsError(f"{path} does not fit this architecture: {len(missing)} of its keys are missing "
                                f"from the file or shaped differently (first: {', '.join(missing[:3])}); is it a "
                                "checkpoint of another architecture? Set `architecture:` to the one it was saved from")
    module.load_state_dict(fits, strict=False)
    return {"weights": str(path), "loaded_keys": len(fits), "skipped_head_keys": sorted(in_head - set(fits))}


# --- the loop -------------------------------------------------------------------------------


def train_classifier(
    module: nn.Module,
    rows: pd.DataFrame,
    preprocess: Preprocess,
    class_names: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Adam on the ``train`` rows for ``settings["epochs"]`` passes, each in a fresh order from a
    generator seeded by ``seed``; returns the mean loss per epoch and the accuracy on every split."""
    index = {name: i for i, name in enumerate(class_names)}
    train = rows[rows["split"] == TRAIN]
    paths, targets = train["path"].tolist(), torch.tensor([index[label] for label in train["label"]])
    batch_size, workers = int(settings["batch_size"]), int(settings.get("workers", 0))
    generator = torch.Generator().manual_seed(seed)
    module.to(device)
    optimizer = torch.optim.Adam(module.parameters(), lr=settings["learning_rate"])
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    bar = Progress("train", settings["epochs"] * math.ceil(len(paths) / batch_size), "batches")
    for epoch in range(settings["epochs"]):
        module.train()
        order = torch.randperm(len(paths), generator=generator)
        total, seen = 0.0, 0
        for start, images in iter_batches([paths[i] for i in order], preprocess, batch_size, workers):
            bar.update(1)
            if len(images) == 1 < batch_size:  # one image left over: BatchNorm may not train on it
                continue  # (the next epoch's order leaves another one over)
            optimizer.zero_grad()
            target = targets[order[start : start + len(images)]].to(device)
            loss = loss_fn(logits(module(images.to(device))), target)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(images), seen + len(images)
        losses.append(total / max(seen, 1))
        logging.getLogger(__name__).info("epoch %d: loss %.3f", epoch + 1, losses[-1])
    bar.finish()
    module.eval()
    metrics: dict[str, Any] = {"loss": losses}
    for split, group in rows.groupby("split", sort=False):
        labels = torch.tensor([index[label] for label in group["label"]])
        metrics[f"n_{split}"] = len(group)
        metrics[f"{split}_accuracy"] = accuracy(module, group["path"].tolist(), labels, preprocess, batch_size,
                                                workers, device)
    return metrics


def accuracy(module: nn.Module, paths: list[str], labels: torch.Tensor, preprocess: Preprocess, batch_size: int,
             workers: int = 0, device: torch.device | str = "cpu") -> float:
    """The share of ``paths`` the model (in eval mode) classifies as ``labels``."""
    correct = 0
    with torch.no_grad():
        for start, images in iter_batches(paths, preprocess, batch_size, workers):
            predicted = logits(module(images.to(device))).argmax(1).cpu()
            correct += int((predicted == labels[start : start + len(images)]).sum())
    return correct / max(len(paths), 1)


def train_model(spec: Mapping[str, Any], manifest: pd.DataFrame, seed: int, name: str | None = None,
                device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Train the model a spec with ``train:`` describes on its dataset's manifest; returns the
    trained module (on the CPU, in eval mode) and what training.json records."""
    train = spec["train"]
    classes = training_classes(splits_of(manifest), train, spec.get("class_names"), train["dataset"])
    rows = training_rows(manifest, train, seed)
    loaded, head = training_model(spec, len(classes), seed, name)
    weights = spec.get("weights")
    start = load_start_weights(loaded.module, weights, head) if weights and weights != STAND_IN else {
        "weights": STAND_IN}
    metrics = train_classifier(loaded.module, rows, loaded.preprocess, classes, train, seed, device)
    record = {"architecture": spec["architecture"], **train, "class_names": classes, "head": head,
              "start": start, **metrics}
    return loaded.module.cpu().eval(), record
