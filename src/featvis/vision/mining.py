"""Top-K maximally (or minimally) activating images per channel, in one streaming pass.

State is a (C, K) buffer of values, image indices and grid positions per layer. Each
batch contributes, per image and channel, its spatial maximum and where it is; the
buffer and the batch are concatenated along K and re-ranked for all channels at once
(a stable sort, so ties go to the lower image index: the result is exactly the top-K
of the whole dataset ranked by (-value, image index), whatever the batch size). The K
entries of a channel are therefore K *distinct images*, each at its best position,
which is what a patch grid should show. Shards merge exactly: the top-K of the
concatenated shard top-Ks, in shard order. A dataset of N < K images gives the top-N
(K is capped, with a log line), so a handful of images still makes patch grids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from featvis.core.hooks import capture
from featvis.vision.data import iter_batches
from featvis.vision.features import LoopTime, timed_forward
from featvis.vision.models import LoadedModel

log = logging.getLogger(__name__)


class MiningError(ValueError):
    """Top-K mining asked for something the data cannot give."""


def patch_count(k: int, n: int) -> int:
    """``k`` capped at the ``n`` images there are (logged when capped)."""
    if k > n:
        log.info("patches k %d capped to %d for %d images", k, n, n)
    return min(k, n)


@dataclass
class TopK:
    """The running top-K of one layer: arrays of shape (C, K), best first."""

    value: torch.Tensor
    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    negative: bool = False
    spatial: tuple[int, int] | None = None

    @classmethod
    def empty(cls, channels: int, negative: bool = False) -> TopK:
        """A buffer with no entries yet: it grows to K as images arrive."""
        zeros = torch.zeros(channels, 0, dtype=torch.int64)
        return cls(torch.zeros(channels, 0), zeros, zeros.clone(), zeros.clone(), negative)

    @property
    def k(self) -> int:
        return self.value.shape[1]

    def update(self, value: torch.Tensor, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor, k: int) -> None:
        """Merge candidates of shape (C, M) (M images in index order after the buffer's)."""
        values = torch.cat((self.value, value.float()), dim=1)
        order = torch.sort(values, dim=1, descending=not self.negative, stable=True).indices[:, :k]
        self.value = values.gather(1, order)
        self.image = torch.cat((self.image, image), dim=1).gather(1, order)
        self.y = torch.cat((self.y, y), dim=1).gather(1, order)
        self.x = torch.cat((self.x, x), dim=1).gather(1, order)

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {
            "value": self.value.numpy().astype(np.float32),
            "image": self.image.numpy().astype(np.int64),
            "y": self.y.numpy().astype(np.int32),
            "x": self.x.numpy().astype(np.int32),
            "negative": np.array(self.negative),
            "spatial": np.array(self.spatial or (1, 1), np.int32),
        }


def spatial_extreme(activation: torch.Tensor, negative: bool = False) -> tuple[torch.Tensor, ...]:
    """Per image and channel: the spatial max (min) of an (N, C, H, W) or (N, C) tensor and
    its (row, col), first occurrence on ties; as (C, N) tensors."""
    if activation.ndim == 2:
        zeros = torch.zeros(activation.shape[::-1], dtype=torch.int64)
        return activation.float().T.cpu(), zeros, zeros.clone()
    if activation.ndim != 4:
        raise MiningError(f"expected an (N, C, H, W) or (N, C) activation, got shape {tuple(activation.shape)}")
    n, c, h, w = activation.shape
    flat = activation.float().reshape(n, c, h * w)
    best, where = (flat.min(dim=2) if negative else flat.max(dim=2))
    where = where.cpu().T
    return best.cpu().T, where // w, where % w


class Miner:
    """Streams batches of activations into per-layer top-K buffers."""

    def __init__(self, k: int, negative: bool = False) -> None:
        if k < 1:
            raise MiningError(f"k must be at least 1, got {k}")
        self.k = k
        self.negative = negative
        self.layers: dict[str, TopK] = {}
        self.seen = 0

    def add(self, outputs: dict[str, torch.Tensor], start: int) -> None:
        """Add one batch (images ``start .. start + N``) of captured layer outputs."""
        n = 0
        for name, activation in outputs.items():
            value, y, x = spatial_extreme(activation, self.negative)
            n = value.shape[1]
            image = torch.arange(start, start + n).expand_as(value)
            self.add_stats(name, value, image, y, x, activation.shape[2:] if activation.ndim == 4 else (1, 1))
        self.seen = max(self.seen, start + n)

    def add_stats(self, name: str, value, image, y, x, spatial) -> None:
        """Add (C, M) candidates directly, e.g. precomputed spatial maxima."""
        if name not in self.layers:
            self.layers[name] = TopK.empty(value.shape[0], self.negative)
            self.layers[name].spatial = tuple(int(s) for s in spatial)
        self.layers[name].update(value, image, y, x, self.k)

    def result(self) -> dict[str, dict[str, np.ndarray]]:
        for name, top in self.layers.items():
            if top.k < self.k:
                raise MiningError(
                    f"k={self.k} is larger than the number of images ({top.k}) at layer {name!r}; "
                    f"set k to at most {top.k}"
                )
        return {name: top.to_numpy() for name, top in self.layers.items()}


@torch.no_grad()
def mine_topk(
    model: LoadedModel,
    paths: list[str],
    layers: list[str],
    k: int,
    device: torch.device,
    batch_size: int = 64,
    negative: bool = False,
    offset: int = 0,
    partial: bool = False,
    progress: bool = True,
    workers: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Top-K images per channel of ``layers`` over ``paths`` (indices start at ``offset``).

    ``partial`` marks a shard of a larger dataset, which may hold fewer than K images
    (:func:`merge_topk` caps K at the whole dataset); otherwise K is capped at ``len(paths)``.
    ``workers`` processes decode images ahead of the model (0: this process); the result is the same.
    """
    if not partial:
        k = patch_count(k, len(paths))
    module = model.module.to(device)
    miner = Miner(k, negative)
    timing, began = LoopTime(), time.perf_counter()
    with capture(module, layers, stop_early=True) as outputs:
        batches = iter_batches(paths, model.preprocess, batch_size, workers, pin_memory=device.type == "cuda")
        for start, batch in tqdm(batches, total=-(-len(paths) // batch_size), disable=not progress,
                                 desc=f"mining {model.name}", unit="batch"):
            timed_forward(module, batch, outputs, device, timing)
            miner.add(outputs, offset + start)
    timing.wall_s = time.perf_counter() - began
    log.info(timing.summary(f"mining {model.name}, {workers} loader workers"))
    return {name: top.to_numpy() for name, top in miner.layers.items()}


def merge_topk(parts: Iterable[dict[str, np.ndarray]], k: int) -> dict[str, np.ndarray]:
    """Exact top-K of shard results given in shard (image index) order; K is capped at the
    number of images (a shard keeps all its images when it has at most K)."""
    parts = list(parts)
    if not parts:
        raise MiningError("nothing to merge: no shard results")
    k = patch_count(k, sum(np.asarray(part["value"]).shape[1] for part in parts))
    negative = bool(parts[0]["negative"])
    miner = Miner(k, negative)
    for part in parts:
        miner.add_stats("layer", *(torch.from_numpy(np.asarray(part[key]).astype(dtype))
                                  for key, dtype in (("value", np.float32), ("image", np.int64),
                                                     ("y", np.int64), ("x", np.int64))),
                        spatial=tuple(part["spatial"]))
    return miner.result()["layer"]


def topk_from_stats(values: np.ndarray, argmax: np.ndarray, k: int, chunk: int = 4096,
                    spatial: tuple[int, int] = (1, 1), negative: bool = False) -> dict[str, np.ndarray]:
    """Top-K from the features stage's (N, C) spatial maxima and (N, C, 2) positions (bottom-K
    from its minima and their positions with ``negative``), streamed in chunks (works on
    memory-mapped arrays); K is capped at the number of images."""
    n = len(values)
    miner = Miner(patch_count(k, n), negative)
    for start in range(0, n, chunk):
        # copies: torch warns on (and must not write to) read-only memory-mapped arrays
        block = torch.from_numpy(np.array(values[start : start + chunk], np.float32)).T
        where = torch.from_numpy(np.array(argmax[start : start + chunk], np.int64))
        image = torch.arange(start, start + block.shape[1]).expand_as(block)
        miner.add_stats("layer", block, image, where[..., 0].T, where[..., 1].T, spatial)
    return miner.result()["layer"]
