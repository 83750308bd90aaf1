"""Start checks for ``models.<name>.train``: what the pipeline cannot train is refused before any job.

A model trains on its dataset's ``train`` split (a folder's ``train/`` sub-folder, a CSV's
``split`` column, a bundled set's own split) and is scored on every other split, or on a
seeded share of each class held out as ``val`` (``train.split``). Its classes are its
``class_names`` when given, else the sorted labels of the training images; the head has one
output per class. The checks read the dataset's listing only (no image is decoded, no model
built): the head itself is checked when the model's structure is probed
(:func:`featvis.vision.train.check_trainable`, cached with the structure).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featvis.core.config import ConfigError

if TYPE_CHECKING:
    import pandas as pd

TRAIN = "train"  # the split a model learns from
HOLDOUT = "val"  # the split name of the share `train.split` holds out
STAND_IN = "random"  # featvis.vision.models.STAND_IN (not imported: that would import torch at start)


class TrainingError(ValueError):
    """A dataset, split or class list a model cannot be trained on; the message says the fix."""


def splits_of(rows: pd.DataFrame) -> dict[str, list[str]]:
    """``{split: sorted labels}`` of manifest-like rows (columns label, split)."""
    return {str(split): sorted(set(group)) for split, group in rows.groupby("split", sort=True)["label"]}


def dataset_splits(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{split: sorted labels}`` of a dataset as its manifest will have them, from its listing
    (a folder's, a CSV's rows, a bundled set's plan): before the data stage, which may skip images."""
    from featvis.vision.listing import bundled_labels, csv_rows, folder_rows

    if spec["source"] == "bundled":
        return bundled_labels(dict(spec))
    return splits_of(folder_rows(spec["path"]) if spec["source"] == "folder" else csv_rows(spec["path"]))


def training_classes(splits: Mapping[str, Collection[str]], train: Mapping[str, Any],
                     class_names: Sequence[str] | None, dataset: str) -> list[str]:
    """The classes a model trains on, in output order: ``class_names`` when given, else the sorted
    labels of the training images. Raises :class:`TrainingError` when the dataset has no training
    images as ``train`` asks, or the names do not match the labels."""
    training, held = _training_labels(splits, train.get("split"), dataset)
    if len(training) < 2:
        raise TrainingError(f"dataset {dataset} has {len(training)} class(es) to train on ({', '.join(training)}); "
                            "a classifier needs at least 2")
    if class_names is None:
        classes = sorted(training)
    else:
        classes = list(class_names)
        _check_names(classes, training, dataset)
    unseen = {split: sorted(set(labels) - set(classes)) for split, labels in held.items()}
    unseen = {split: labels for split, labels in unseen.items() if labels}
    if unseen:
        listed = "; ".join(f"split {split}: {', '.join(labels)}" for split, labels in unseen.items())
        raise TrainingError(f"dataset {dataset} has labels in its held-out images that no training image has "
                            f"({listed}); the model cannot learn them: add training images of those classes "
                            "or remove them from the held-out split")
    return classes


def _training_labels(splits: Mapping[str, Collection[str]], fraction: float | None,
                     dataset: str) -> tuple[set[str], dict[str, Collection[str]]]:
    """(labels of the training images, {held-out split: its labels})."""
    listed = ", ".join(sorted(splits))
    if fraction is not None:
        if not 0 < fraction < 1:
            raise TrainingError(f"split {fraction!r} must be a share strictly between 0 and 1 (e.g. 0.2 holds out "
                                "20% of each class)")
        if TRAIN in splits:
            raise TrainingError(f"dataset {dataset} has its own train split (splits: {listed}), so `split: "
                                f"{fraction}` has nothing to hold out from; drop `split` to use the dataset's own")
        every = {label for labels in splits.values() for label in labels}
        return every, {}  # every class keeps at least one training image (featvis.vision.train.holdout)
    if TRAIN not in splits:
        raise TrainingError(
            f"dataset {dataset} has no train split (its images' split: {listed}); hold out a share of each class "
            f"with `split: 0.2`, or give the dataset one: a folder with train/ and val/ sub-folders "
            "(<folder>/train/<class>/<image>), or a CSV split column with train rows")
    return set(splits[TRAIN]), {split: labels for split, labels in splits.items() if split != TRAIN}


def _check_names(classes: list[str], training: set[str], dataset: str) -> None:
    duplicated = sorted({name for name in classes if classes.count(name) > 1})
    if duplicated:
        raise TrainingError(f"class_names lists {', '.join(duplicated)} more than once; give each class once, "
                            "in the order of the model's outputs")
    unnamed, unused = sorted(training - set(classes)), sorted(set(classes) - training)
    if unnamed or unused:
        parts = ([f"training labels missing from class_names: {', '.join(unnamed)}"] if unnamed else []) + (
            [f"class_names without training images: {', '.join(unused)}"] if unused else [])
        raise TrainingError(f"class_names do not match the labels of dataset {dataset}'s training images "
                            f"({'; '.join(parts)}); list exactly those labels, in the order of the model's outputs, "
                            "or leave class_names out (then they are the sorted labels)")


def check_training(config: MutableMapping[str, Any]) -> None:
    """Refuse, naming the key and the fix, every ``train:`` the pipeline cannot carry out, and fill
    each trained model's ``class_names`` and ``num_classes`` in the resolved config, so every stage
    (and the structure probe) sees the trained head."""
    listings: dict[str, dict[str, list[str]]] = {}
    for name, spec in sorted(config["models"].items()):
        if "train" not in spec:
            continue
        dataset = spec["train"]["dataset"]
        if dataset not in listings:
            listings[dataset] = _listing(dataset, config["datasets"][dataset])
        _check_architecture(name, spec)
        _check_start_weights(name, spec)
        try:
            classes = training_classes(listings[dataset], spec["train"], spec.get("class_names"), dataset)
        except TrainingError as error:
            raise ConfigError(f"models.{name}.train: {error}") from None
        if spec.get("num_classes") not in (None, len(classes)):
            raise ConfigError(f"models.{name}.num_classes: {spec['num_classes']}, but the model trains on "
                              f"{len(classes)} classes ({', '.join(classes)}); leave num_classes out")
        spec["class_names"], spec["num_classes"] = classes, len(classes)


def _listing(name: str, spec: Mapping[str, Any]) -> dict[str, list[str]]:
    from featvis.vision.listing import ManifestError

    try:
        return dataset_splits(spec)
    except (ManifestError, OSError) as error:  # a missing or empty folder, a missing CSV
        raise ConfigError(f"datasets.{name}: {error}") from None


def _check_architecture(name: str, spec: Mapping[str, Any]) -> None:
    if spec["architecture"] == "module":
        raise ConfigError(f"models.{name}.train: architecture `module` is a whole saved model, which featvis "
                          "cannot rebuild to train; train a named architecture (a torchvision name, timm:<name>, "
                          "mnist_cnn, ...) and start it from your weights with `weights:`")


def _check_start_weights(name: str, spec: Mapping[str, Any]) -> None:
    """``weights:`` of a trained model is where training starts (fine-tuning): the file must be here."""
    weights = spec.get("weights")
    if weights and weights != STAND_IN and not Path(weights).expanduser().is_file():
        raise ConfigError(f"models.{name}.weights: weights file {weights!r} to start training from not found "
                          f"(looked at {Path(weights).expanduser().resolve()}); put it there, or leave `weights` "
                          "out to train from random weights")
