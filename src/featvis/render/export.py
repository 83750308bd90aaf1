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
    """``<name>.png`` per item, ``params.npz`` (to resume or re-export) and ``trace.json``."""
    out_dir = Path(out_dir)
    paths = []
    for name, image in zip(batch.names, batch.result.images, strict=True):
        paths.append(out_dir / f"{name}.png")
        save_png(paths[-1], image)
    save_npz(out_dir / "params.npz", images=batch.result.images, seeds=np.asarray(batch.result.seeds),
             **{f"param_{k.replace('.', '_')}": v for k, v in batch.result.params.items()})
    write_json(out_dir / "trace.json", trace_record(batch, layer, dataset_max, extra))
    return paths


def save_units(batch: Batch, units: str | os.PathLike, trace: dict[str, Any], source: str) -> list[Path]:
    """Each channel render as a unit picture (featvis.core.units), ``<cccc>.copy<k>.png``, with its
    trace item as the caption (objective per step, activation vs the dataset maximum)."""
    paths = []
    for name, image, item in zip(batch.names, batch.result.images, trace["items"], strict=True):
        copy = name.rsplit("_copy", 1)[1]
        caption = {"title": f"render ({source}), copy {copy}", "settings": trace.get("settings"), **item}
        paths.append(write_unit_image(units, item["channel"], f"copy{copy}", to_uint8(image), caption))
    return paths


def stitch(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images side by side (for quick looks and tests)."""
    return np.concatenate(list(images), axis=1)
