"""Per-layer activation statistics over a dataset, streamed in batches.

For each image and channel we keep the spatial mean, the spatial maximum and where
that maximum is (row, column on the layer's grid): everything patch mining, nearest
neighbours and embeddings need, in O(images x channels) instead of full feature maps.
Work is split into shards (slices of the manifest) that merge by concatenation.

An (image, channel) whose map holds a NaN or an infinity is *missing*: its mean, max and min
are stored as NaN, so rankings leave the image out for that channel (``featvis.vision.mining``),
and the non-finite activations are counted per image, logged as a warning and recorded in
each layer's ``meta.json`` (``nonfinite``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from featvis.core.hooks import capture, run_to_layers
from featvis.core.io import npy_writer, save_npz, write_sidecar
from featvis.core.progress import tracked
from featvis.vision.data import iter_batches
from featvis.vision.models import LoadedModel

log = logging.getLogger(__name__)

STATS = ("mean", "max", "argmax", "min", "argmin")


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one batch at one layer: (N, C) mean, max and min, (N, C, 2) argmax and
    argmin (the minima let the bottom-K patches come from these statistics too, with no
    second pass over the images), and (N,) non-finite activations per image. A missing
    (image, channel), one whose map is not all finite, has NaN mean, max and min."""

    mean: np.ndarray
    max: np.ndarray
    argmax: np.ndarray
    min: np.ndarray
    argmin: np.ndarray
    spatial: tuple[int, int]
    nonfinite: np.ndarray


def nonfinite_per_image(activation: torch.Tensor) -> np.ndarray:
    """(N,) count of NaN and infinite values in each image's activation."""
    return (~torch.isfinite(activation)).reshape(len(activation), -1).sum(1).cpu().numpy().astype(np.int64)


def layer_stats(activation: torch.Tensor) -> LayerStats:
    """Reduce an (N, C, H, W) or (N, C) activation over its spatial positions."""
    if activation.ndim == 2:
        values = activation.float()
        values = torch.where(torch.isfinite(values), values, torch.nan).cpu().numpy()
        zeros = np.zeros((*values.shape, 2), np.int32)
        return LayerStats(values, values, zeros, values, zeros, (1, 1), nonfinite_per_image(activation))
    if activation.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) or (N, C) activation, got shape {tuple(activation.shape)}")
    n, c, h, w = activation.shape
    flat = activation.float().reshape(n, c, h * w)
    top, where_max = flat.max(dim=2)
    bottom, where_min = flat.min(dim=2)
    mean = flat.mean(dim=2)
    # NaN reaches both extremes, +inf the max and -inf the min: no extra pass over the maps
    finite = torch.isfinite(top) & torch.isfinite(bottom)
    nonfinite = np.zeros(n, np.int64)
    if not bool(finite.all()):
        top, bottom, mean = (torch.where(finite, t, torch.nan) for t in (top, bottom, mean))
        nonfinite = nonfinite_per_image(flat)

    def grid(where: torch.Tensor) -> np.ndarray:
        return torch.stack((where // w, where % w), dim=2).to(torch.int32).cpu().numpy()

    return LayerStats(mean.cpu().numpy(), top.cpu().numpy(), grid(where_max),
                      bottom.cpu().numpy(), grid(where_min), (h, w), nonfinite)


def nonfinite_record(per_image: np.ndarray, listed: int = 1000) -> dict:
    """For a sidecar: non-finite activations in all, the images that hold any, and (at most
    ``listed`` of) their indices."""
    images = np.flatnonzero(per_image)
    return {"activations": int(per_image.sum()), "images": len(images), "image_indices": images[:listed].tolist()}


def warn_nonfinite(what: str, record: dict) -> None:
    if record["images"]:
        log.warning("%s: %d non-finite (NaN or infinite) activations in %d images (first: %s); each such image "
                    "is left out of the ranking of the channels concerned", what, record["activations"],
                    record["images"], ", ".join(map(str, record["image_indices"][:10])))


@dataclass
class LoopTime:
    """Where a streaming pass over images spent its time: in the model's forward passes,
    and in the whole loop (waiting for batches, reducing activations and the forward passes)."""

    images: int = 0
    forward_s: float = 0.0
    wall_s: float = 0.0

    @property
    def busy(self) -> float:
        """The share of the loop the model was computing: near 1 when loading keeps it fed."""
        return self.forward_s / self.wall_s if self.wall_s else 0.0

    def summary(self, what: str) -> str:
        rate = self.images / self.wall_s if self.wall_s else 0.0
        return (f"{what}: {self.images} images in {self.wall_s:.2f} s ({rate:.1f} images/s); forward passes "
                f"{self.forward_s:.2f} s, busy {100 * self.busy:.1f}% of the loop")


def timed_forward(module: torch.nn.Module, batch: torch.Tensor, outputs: dict, device: torch.device,
                  timing: LoopTime) -> None:
    """One forward pass to the captured layers, its time added to ``timing``."""
    start = time.perf_counter()
    run_to_layers(module, batch.to(device, non_blocking=True), outputs)
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # kernels run asynchronously: wait, or the time is only the launch
    timing.forward_s += time.perf_counter() - start
    timing.images += len(batch)


@torch.no_grad()
def extract_shard(
    model: LoadedModel,
    paths: list[str],
    layers: list[str],
    device: torch.device,
    batch_size: int = 64,
    progress: bool = True,
    workers: int = 0,
    timing: LoopTime | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Statistics of ``layers`` for the images at ``paths`` (one shard), in order. ``workers``
    processes decode images ahead of the model (0: this process); the result is the same.
    Where the time went is logged, and added to ``timing`` when given."""
    module = model.module.to(device)
    chunks: dict[str, list[LayerStats]] = {name: [] for name in layers}
    timing = timing if timing is not None else LoopTime()
    start = time.perf_counter()
    with capture(module, layers, stop_early=True) as outputs:
        batches = iter_batches(paths, model.preprocess, batch_size, workers, pin_memory=device.type == "cuda")
        for _start, batch in tracked(batches, -(-len(paths) // batch_size), f"features {model.name}", "batches",
                                     enabled=progress):
            timed_forward(module, batch, outputs, device, timing)
            for name in layers:
                chunks[name].append(layer_stats(outputs[name]))
    timing.wall_s += time.perf_counter() - start
    log.info(timing.summary(f"features {model.name}, {workers} loader workers"))
    shard = {}
    for name, stats in chunks.items():
        shard[name] = {key: np.concatenate([getattr(s, key) for s in stats]) for key in (*STATS, "nonfinite")}
        shard[name]["spatial"] = np.array(stats[0].spatial, np.int32)
        warn_nonfinite(f"features {model.name} {name} (image numbers within this shard)",
                       nonfinite_record(shard[name]["nonfinite"]))
    return shard


def write_shard(shard: dict[str, dict[str, np.ndarray]], out_dir: str | os.PathLike) -> None:
    Path(out_dir).mkdir(parents=True, exist_ok=True)  # stays empty for a shard past the last image
    for name, stats in shard.items():
        save_npz(Path(out_dir) / f"{name}.npz", **stats)


def merge_shards(shard_files: list[str | os.PathLike], out_dir: str | os.PathLike, **sidecar) -> None:
    """Concatenate one layer's shard files into memory-mappable ``.npy`` files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = [np.load(path) for path in shard_files]
    total = sum(len(s["mean"]) for s in shards)
    for stat in STATS:
        first = shards[0][stat]
        with npy_writer(out_dir / f"{stat}.npy", (total, *first.shape[1:]), first.dtype) as writer:
            row = 0
            for shard in shards:
                block = shard[stat]
                writer[row : row + len(block)] = block
                row += len(block)
    # shards written before non-finite values were counted have none recorded
    per_image = [s["nonfinite"] if "nonfinite" in s else np.zeros(len(s["mean"]), np.int64) for s in shards]
    nonfinite = nonfinite_record(np.concatenate(per_image))
    warn_nonfinite(f"features {sidecar.get('model', '')} {sidecar.get('layer', out_dir.name)}".strip(), nonfinite)
    spatial = shards[0]["spatial"].tolist()
    write_sidecar(out_dir / "meta.json", n_images=total, channels=int(shards[0]["mean"].shape[1]),
                  spatial=spatial, nonfinite=nonfinite, **sidecar)


def load_layer(layer_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The merged statistics of one layer, memory-mapped."""
    return {stat: np.load(Path(layer_dir) / f"{stat}.npy", mmap_mode="r") for stat in STATS}


def shard_slices(n_items: int, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous, nearly equal [start, stop) slices; empty shards are not made."""
    n_shards = max(1, min(n_shards, n_items))
    bounds = np.linspace(0, n_items, n_shards + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
