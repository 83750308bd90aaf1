"""Datasets listed without reading an image: folder and CSV rows, a folder's digest, what the
bundled sets will hold. No torch import, so the start checks and Snakemake's parse of the
workflow use it without paying for torch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
                  "immunohistochemistry", "camera", "coins", "moon", "brick", "grass", "gravel")
# Every bundled photo (featvis.vision.data builds them; these are the labels of the `photos` set).
PHOTO_NAMES = tuple(sorted((*SKIMAGE_PHOTOS, "motorcycle_left", "motorcycle_right", "china", "flower",
                            "grace_hopper")))
PHOTO_CROPS = 1200  # crops of the bundled `photos` set unless `n_crops` says otherwise


class ManifestError(ValueError):
    """A manifest or image folder that cannot be used."""


SPLIT_FOLDERS = ("train", "val", "test")  # sub-folders that name splits: <root>/<split>/<class>/<image>


def folder_rows(root: str | os.PathLike) -> pd.DataFrame:
    """One sub-folder per class (split ``all``), or split sub-folders ``train/`` (and ``val/``,
    ``test/``) each with one sub-folder per class (:func:`folder_splits`); files sorted so the
    order is the same everywhere: splits in ``SPLIT_FOLDERS`` order, then classes, then files."""
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"image folder {root} does not exist")
    splits = folder_splits(root)
    rows = [row for split in splits for row in _class_rows(root / split, split)] if splits else _class_rows(root)
    if not rows:
        loose = sum(1 for file in root.iterdir() if file.suffix.lower() in IMAGE_SUFFIXES)
        hint = f"; its {loose} image file(s) directly in {root} need a class sub-folder" if loose else ""
        where = f"{root}/<split>/<class>/ for splits {', '.join(splits)}" if splits else f"{root}/<class>/"
        raise ManifestError(f"no images in class sub-folders of {root} (looked for files ending "
                            f"{', '.join(sorted(IMAGE_SUFFIXES))} in {where}){hint}")
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def folder_splits(root: str | os.PathLike) -> list[str]:
    """The split sub-folders of ``root``, in ``SPLIT_FOLDERS`` order, when it is laid out by split:
    every sub-folder is one of ``SPLIT_FOLDERS``, ``train`` among them, and ``train`` holds class
    sub-folders. Otherwise ``[]``: the sub-folders are classes (a class called ``train`` holding
    its images directly stays a class)."""
    root = Path(root)
    names = {p.name for p in root.iterdir() if p.is_dir()}
    if "train" not in names or not names <= set(SPLIT_FOLDERS):
        return []
    if not any(p.is_dir() for p in (root / "train").iterdir()):
        return []
    return [split for split in SPLIT_FOLDERS if split in names]


def _class_rows(root: Path, split: str = "all") -> list[dict[str, str]]:
    return [
        {"path": str(file), "label": class_dir.name, "split": split}
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for file in sorted(class_dir.rglob("*"))
        if file.suffix.lower() in IMAGE_SUFFIXES
    ]


def folder_digest(root: str | os.PathLike) -> str:
    """A digest of the folder's images (class, name, size, modification time): it changes when an
    image is added, removed or replaced, so the workflow reruns the data check and what follows."""
    digest = hashlib.sha1()
    for row in folder_rows(root).itertuples():
        stat = Path(row.path).stat()
        digest.update(f"{Path(row.path).relative_to(root)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def csv_rows(csv_path: str | os.PathLike) -> pd.DataFrame:
    """A CSV with columns path, label (split optional); relative paths are from the CSV."""
    csv_path = Path(csv_path)
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise ManifestError(f"{csv_path}: missing column(s) {sorted(missing)}; need path, label[, split]")
    table["path"] = [str(p if Path(p).is_absolute() else csv_path.parent / p) for p in table["path"]]
    if "split" not in table.columns:
        table["split"] = "all"
    return table[["path", "label", "split"]]


def photo_plan(n_crops: int) -> list[tuple[str, str]]:
    """(label, split) of each crop :func:`build_photos` makes, known without loading a photo:
    the photos in turn, in name order; every fifth crop is test."""
    labels = PHOTO_NAMES
    return [(labels[index % len(labels)], "test" if index % 5 == 4 else "train") for index in range(n_crops)]


MNIST5K_LABELS = tuple(str(digit) for digit in range(10))  # in both splits (tests/test_train_checks.py checks it)


def bundled_labels(spec: dict) -> dict[str, list[str]]:
    """``{split: sorted labels}`` of a bundled set as its manifest will have them, without making
    it (training's start checks need them)."""
    if spec["name"] == "mnist5k":
        return {"train": list(MNIST5K_LABELS), "test": list(MNIST5K_LABELS)}
    n_crops = spec.get("n_crops", PHOTO_CROPS)
    splits: dict[str, set[str]] = {}
    for label, split in photo_plan(n_crops):
        splits.setdefault(split, set()).add(label)
    return {split: sorted(labels) for split, labels in splits.items()}


