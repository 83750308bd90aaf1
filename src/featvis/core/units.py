"""One key per unit: every per-channel output of every stage, addressable as (model, layer, channel).

Each stage that makes per-channel pictures writes them into its own *producer* folder
under one tree::

    results/units/<model>/<layer>/<stage>/<source>/<cccc>.<kind>.<png|jpg>  (+ <cccc>.<kind>.json)

``<source>`` is the dataset (patches, DeconvNet) or the render job; ``<kind>`` names the
picture (``patches``, ``copy0``, ``deconvnet`` ...); the JSON beside a picture is its
caption data. Renders are PNG; strips of dataset patches are JPEG (photographs: 5-10x smaller,
and still byte-identical on rerun, since the encoder is deterministic). A unit page is then
everything that matches ``*/*/<cccc>.*`` in one folder: no stage-specific lookup.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from featvis.core.io import atomic_path, read_json, write_json

UNITS_ROOT = "units"
UNIT_FILE = re.compile(r"^(\d{4,})\.([A-Za-z0-9_]+)\.(png|jpg)$")
JPEG_QUALITY = 90


def units_dir(results: str | os.PathLike, model: str, layer: str, stage: str, source: str) -> Path:
    """The producer folder of one stage and source for one (model, layer)."""
    return Path(results) / UNITS_ROOT / model / layer / stage / source


def unit_stem(channel: int) -> str:
    return f"{int(channel):04d}"


def write_unit_image(folder: str | os.PathLike, channel: int, kind: str, image: np.ndarray,
                     caption: dict[str, Any] | None = None, fmt: str = "png") -> Path:
    """``<cccc>.<kind>.<fmt>`` (an (H, W, 3) uint8 or [0, 1] float image; ``fmt`` png or jpg) and
    its caption JSON."""
    path = Path(folder) / f"{unit_stem(channel)}.{kind}.{fmt}"
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)
    options = {"format": "JPEG", "quality": JPEG_QUALITY} if fmt == "jpg" else {"format": "PNG"}
    with atomic_path(path) as tmp:  # PIL writes no timestamp: byte-identical on rerun
        Image.fromarray(array.squeeze()).convert("RGB").save(tmp, **options)
    if caption is not None:
        write_json(path.with_suffix(".json"), caption)
    return path


def strip(images: list[np.ndarray], gap: int = 2, fill: int = 255) -> np.ndarray:
    """Same-sized (H, W, 3) uint8 images side by side with a thin gap."""
    h, w = images[0].shape[:2]
    out = np.full((h, len(images) * (w + gap) - gap, 3), fill, dtype=np.uint8)
    for i, image in enumerate(images):
        out[:, i * (w + gap): i * (w + gap) + w] = image
    return out


@dataclass(frozen=True)
class UnitFile:
    """One picture of one unit, as found on disk."""

    stage: str
    source: str
    kind: str
    image: Path
    caption: dict[str, Any] | None


def unit_files(results: str | os.PathLike, model: str, layer: str, channel: int) -> list[UnitFile]:
    """Every picture of the unit, in a stable order (stage, source, kind)."""
    found = []
    for path in sorted((Path(results) / UNITS_ROOT / model / layer).glob(f"*/*/{unit_stem(channel)}.*")):
        if not (match := UNIT_FILE.match(path.name)):
            continue
        kind = match.group(2)
        sidecar = path.with_suffix(".json")
        found.append(UnitFile(path.parent.parent.name, path.parent.name, kind, path,
                              read_json(sidecar) if sidecar.exists() else None))
    return found


def unit_channels(results: str | os.PathLike, model: str, layer: str) -> list[int]:
    """Channels that have at least one picture, ascending."""
    root = Path(results) / UNITS_ROOT / model / layer
    return sorted({int(m.group(1)) for p in root.glob("*/*/*") if (m := UNIT_FILE.match(p.name))})
