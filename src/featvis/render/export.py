"""Write a batched render to disk: one PNG per item, raw parameters, and a trace."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from featvis.core.io import atomic_path, read_json, save_npz, write_json
from featvis.core.units import write_unit_image
from featvis.render.recipes import Batch


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image) * 255), 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """An (H, W, 3) image in [0, 1] as an 8-bit PNG (PIL writes no timestamp)."""
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")


TRANSPARENCY_PERCENTILE = 99.0  # the map's 8-bit scale: this percentile is opaque (one hot pixel cannot blank the rest)


def transparency_alpha(transparency: np.ndarray) -> np.ndarray:
    """An (H, W) transparency map as 8-bit alpha: 255 at and above its ``TRANSPARENCY_PERCENTILE``."""
    values = np.asarray(transparency, dtype=np.float64)
    top = float(np.percentile(values, TRANSPARENCY_PERCENTILE)) if values.size else 0.0
    scaled = values / top if top > 0 else np.zeros_like(values)
    return to_uint8(np.clip(scaled, 0.0, 1.0))


def transparency_path(image_path: str | os.PathLike) -> Path:
    """Where a render's transparency map lives: beside it, ``<stem>.transparency.png``."""
    path = Path(image_path)
    return path.with_name(f"{path.stem}.transparency.png")


def save_transparency(image_path: str | os.PathLike, transparency: np.ndarray) -> Path:
    """The map as an 8-bit greyscale PNG beside the render at ``image_path``."""
    path = transparency_path(image_path)
    with atomic_path(path) as tmp:
        Image.fromarray(transparency_alpha(transparency), mode="L").save(tmp, format="PNG")
    return path


def load_channel_maxima(path: str | os.PathLike | None) -> np.ndarray | None:
    """Per-channel dataset maxima from ``.npy`` (C,), the features stage's per-image
    ``max.npy`` (N, C; the maximum over images is taken) or ``.json`` (a list, or
    ``{"max": [...]}``)."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix == ".npy":
        maxima = np.load(path, mmap_mode="r")
        return np.asarray(np.nanmax(maxima, axis=0) if maxima.ndim == 2 else maxima, dtype=np.float64).reshape(-1)
    data = read_json(path)
    return np.asarray(data["max"] if isinstance(data, dict) else data, dtype=np.float64)


def trace_record(batch: Batch, layer: str | None = None, dataset_max: np.ndarray | None = None,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per item: seed, objective per step, final objective, and activation vs the dataset maximum."""
    result = batch.result
    items = []
    for i, name in enumerate(batch.names):
        item = {
            "name": name,
            "seed": result.seeds[i],
            "channel": batch.channels[i],
            "objective": [round(float(v), 6) for v in result.trace[:, i]],
            "final_objective": float(result.final[i]),
        }
        channel = batch.channels[i]
        if layer is not None and channel is not None and layer in result.activations:
            act = result.activations[layer][i, channel]
            item["final_max_activation"] = float(np.max(act))
            if dataset_max is not None:
                item["relative_to_dataset_max"] = float(np.max(act) / dataset_max[channel])
        items.append(item)
    return {**(extra or {}), "items": items}


def save_batch(batch: Batch, out_dir: str | os.PathLike, layer: str | None = None,
               dataset_max: np.ndarray | None = None, extra: dict[str, Any] | None = None) -> list[Path]:
    """``<name>.png`` per item with its transparency map ``<name>.transparency.png``, ``params.npz``
    (to resume or re-export; ``transparency`` holds the raw maps) and ``trace.json``."""
    out_dir = Path(out_dir)
    paths = []
    maps = batch.result.transparency
    for i, (name, image) in enumerate(zip(batch.names, batch.result.images, strict=True)):
        paths.append(out_dir / f"{name}.png")
        save_png(paths[-1], image)
        if maps is not None:
            save_transparency(paths[-1], maps[i])
    extra_arrays = {} if maps is None else {"transparency": maps}
    save_npz(out_dir / "params.npz", images=batch.result.images, seeds=np.asarray(batch.result.seeds), **extra_arrays,
             **{f"param_{k.replace('.', '_')}": v for k, v in batch.result.params.items()})
    write_json(out_dir / "trace.json", trace_record(batch, layer, dataset_max, extra))
    return paths


def save_units(batch: Batch, units: str | os.PathLike, trace: dict[str, Any], source: str) -> list[Path]:
    """Each channel render as a unit picture (featvis.core.units), ``<cccc>.copy<k>.png``, with its
    trace item as the caption (objective per step, activation vs the dataset maximum) and its
    transparency map beside it, ``<cccc>.copy<k>.transparency.png`` (not a unit picture of its own:
    the gallery finds it from the render's name)."""
    paths = []
    maps = batch.result.transparency
    for i, (name, image, item) in enumerate(zip(batch.names, batch.result.images, trace["items"], strict=True)):
        copy = name.rsplit("_copy", 1)[1]
        caption = {"title": f"render ({source}), copy {copy}", "settings": trace.get("settings"), **item}
        paths.append(write_unit_image(units, item["channel"], f"copy{copy}", to_uint8(image), caption))
        if maps is not None:
            save_transparency(paths[-1], maps[i])
    return paths


def stitch(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images side by side (for quick looks and tests)."""
    return np.concatenate(list(images), axis=1)
