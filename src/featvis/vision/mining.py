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

NaN and infinite activations never enter a top-K: an (image, channel) whose map holds one is
missing (its value NaN), ranked after every real value and cut before K is reached; the images
concerned are counted, recorded in the result (``nonfinite_*``) and logged as a warning. When a
channel has fewer than K images with finite activations, K is capped there for the layer (a
warning); a channel with none is an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from featvis.core.hooks import capture
from featvis.core.progress import tracked
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
    """The running top-K of one layer: arrays of shape (C, K), best first; and the images left
    out of some channel's ranking for non-finite activations."""

    value: torch.Tensor
    image: torch.Tensor
    y: torch.Tensor
    x: torch.Tensor
    negative: bool = False
    spatial: tuple[int, int] | None = None
    nonfinite_images: list[np.ndarray] = field(default_factory=list)  # image indices, per batch
    nonfinite_pairs: list[np.ndarray] = field(default_factory=list)  # channels each was left out of
    nonfinite_activations: int = 0

    @classmethod
    def empty(cls, channels: int, negative: bool = False) -> TopK:
        """A buffer with no entries yet: it grows to K as images arrive."""
        zeros = torch.zeros(channels, 0, dtype=torch.int64)
        return cls(torch.zeros(channels, 0), zeros, zeros.clone(), zeros.clone(), negative)

    @property
    def k(self) -> int:
        return self.value.shape[1]

    def update(self, value: torch.Tensor, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor, k: int) -> None:
        """Merge candidates of shape (C, M) (M images in index order after the buffer's); NaN
        values (missing) rank after every real one."""
        values = torch.cat((self.value, value.float()), dim=1)
        key = torch.where(values.isnan(), float("inf") if self.negative else -float("inf"), values)
        order = torch.sort(key, dim=1, descending=not self.negative, stable=True).indices[:, :k]
        self.value = values.gather(1, order)
        self.image = torch.cat((self.image, image), dim=1).gather(1, order)
        self.y = torch.cat((self.y, y), dim=1).gather(1, order)
        self.x = torch.cat((self.x, x), dim=1).gather(1, order)

    def note_missing(self, images: np.ndarray, pairs: np.ndarray, activations: int = 0) -> None:
        """Record images left out of ``pairs`` channels' rankings (``activations`` non-finite values)."""
        if len(images):
            self.nonfinite_images.append(np.asarray(images, np.int64))
            self.nonfinite_pairs.append(np.asarray(pairs, np.int64))
        self.nonfinite_activations += int(activations)

    def rankable(self, name: str) -> None:
        """Cap K at the fewest images with finite activations any channel has (a warning); a
        channel with none is an error."""
        finite = (~self.value.isnan()).sum(dim=1)
        fewest = int(finite.min()) if len(finite) else self.k
        if fewest >= self.k:
            return
        short = torch.nonzero(finite == fewest).flatten().tolist()
        channels = ", ".join(map(str, short[:10])) + (" ..." if len(short) > 10 else "")
        if fewest == 0:
            raise MiningError(f"layer {name!r}: channel(s) {channels} have no image with finite activations "
                              "(NaN or infinite on every image): the model is broken there")
        log.warning("layer %s: k capped from %d to %d: channel(s) %s have only %d images with finite activations",
                    name, self.k, fewest, channels, fewest)
        self.value, self.image, self.y, self.x = (t[:, :fewest] for t in (self.value, self.image, self.y, self.x))

    def nonfinite_record(self) -> dict[str, np.ndarray]:
        images = np.concatenate(self.nonfinite_images) if self.nonfinite_images else np.zeros(0, np.int64)
        pairs = np.concatenate(self.nonfinite_pairs) if self.nonfinite_pairs else np.zeros(0, np.int64)
        order = np.argsort(images, kind="stable")
        return {"nonfinite_images": images[order], "nonfinite_pairs": pairs[order],
                "nonfinite_activations": np.array(self.nonfinite_activations, np.int64)}

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {
            "value": self.value.numpy().astype(np.float32),
            "image": self.image.numpy().astype(np.int64),
            "y": self.y.numpy().astype(np.int32),
            "x": self.x.numpy().astype(np.int32),
            "negative": np.array(self.negative),
            "spatial": np.array(self.spatial or (1, 1), np.int32),
            **self.nonfinite_record(),
        }


def nonfinite_summary(topk: dict[str, np.ndarray], listed: int = 1000) -> dict:
    """For a sidecar: the images left out of some channel's ranking (at most ``listed`` named),
    the (image, channel) pairs left out, and the non-finite activations counted (-1: not
    counted here, see the features stage's ``meta.json``)."""
    images = np.asarray(topk.get("nonfinite_images", np.zeros(0, np.int64)))
    return {"images": len(images), "image_indices": images[:listed].tolist(),
            "pairs": int(np.asarray(topk.get("nonfinite_pairs", np.zeros(0))).sum()),
            "activations": int(topk.get("nonfinite_activations", 0))}


def _warn_missing(name: str, record: dict) -> None:
    if record["images"]:
        counted = f"{record['activations']} non-finite activations, " if record["activations"] >= 0 else ""
        log.warning("layer %s: %d images left out of some channels' rankings (%d image-channel pairs) for NaN or "
                    "infinite activations (%sfirst images: %s)", name, record["images"], record["pairs"], counted,
                    ", ".join(map(str, record["image_indices"][:10])))


def spatial_extreme(activation: torch.Tensor, negative: bool = False) -> tuple[torch.Tensor, ...]:
    """Per image and channel: the spatial max (min) of an (N, C, H, W) or (N, C) tensor and
    its (row, col), first occurrence on ties; as (C, N) tensors. NaN where the map holds a
    NaN or an infinity (missing)."""
    if activation.ndim == 2:
        zeros = torch.zeros(activation.shape[::-1], dtype=torch.int64)
        value = activation.float().T.cpu()
        return torch.where(torch.isfinite(value), value, torch.nan), zeros, zeros.clone()
    if activation.ndim != 4:
        raise MiningError(f"expected an (N, C, H, W) or (N, C) activation, got shape {tuple(activation.shape)}")
    n, c, h, w = activation.shape
    flat = activation.float().reshape(n, c, h * w)
    best, where = (flat.min(dim=2) if negative else flat.max(dim=2))
    other = flat.amax(dim=2) if negative else flat.amin(dim=2)  # NaN reaches both, an infinity one of them
    best = torch.where(torch.isfinite(best) & torch.isfinite(other), best, torch.nan)
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
            self.record_missing(name, value, start, activation)
        self.seen = max(self.seen, start + n)

    def record_missing(self, name: str, value: torch.Tensor, start: int,
                      activation: torch.Tensor | None = None) -> None:
        """Record the images (columns of the (C, N) ``value``, from ``start``) with missing channels."""
        pairs = value.isnan().sum(dim=0)
        if not bool(pairs.any()):
            return
        rows = torch.nonzero(pairs).flatten()
        counted = 0
        if activation is not None:
            counted = int((~torch.isfinite(activation[rows.to(activation.device)])).sum())
        self.layers[name].note_missing((rows + start).numpy(), pairs[rows].numpy(), counted)

    def add_stats(self, name: str, value, image, y, x, spatial) -> None:
        """Add (C, M) candidates directly, e.g. precomputed spatial maxima."""
        if name not in self.layers:
            self.layers[name] = TopK.empty(value.shape[0], self.negative)
            self.layers[name].spatial = tuple(int(s) for s in spatial)
        self.layers[name].update(value, image, y, x, self.k)

    def result(self, partial: bool = False) -> dict[str, dict[str, np.ndarray]]:
        """Every layer's top-K. ``partial`` (a shard): as buffered, for :func:`merge_topk`; otherwise
        K must be reached, and is capped where a channel has fewer images with finite activations."""
        out = {}
        for name, top in self.layers.items():
            if not partial:
                if top.k < self.k:
                    raise MiningError(
                        f"k={self.k} is larger than the number of images ({top.k}) at layer {name!r}; "
                        f"set k to at most {top.k}"
                    )
                top.rankable(name)
            out[name] = top.to_numpy()
            _warn_missing(name, nonfinite_summary(out[name]))
        return out


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
        for start, batch in tracked(batches, -(-len(paths) // batch_size), f"mining {model.name}", "batches",
                                    enabled=progress):
            timed_forward(module, batch, outputs, device, timing)
            miner.add(outputs, offset + start)
    timing.wall_s = time.perf_counter() - began
    log.info(timing.summary(f"mining {model.name}, {workers} loader workers"))
    return miner.result(partial=partial)


def merge_topk(parts: Iterable[dict[str, np.ndarray]], k: int, layer: str = "layer") -> dict[str, np.ndarray]:
    """Exact top-K of shard results given in shard (image index) order; K is capped at the
    number of images (a shard keeps all its images when it has at most K). ``layer`` names
    the layer in messages."""
    parts = list(parts)
    if not parts:
        raise MiningError("nothing to merge: no shard results")
    k = patch_count(k, sum(np.asarray(part["value"]).shape[1] for part in parts))
    negative = bool(parts[0]["negative"])
    miner = Miner(k, negative)
    for part in parts:
        miner.add_stats(layer, *(torch.from_numpy(np.asarray(part[key]).astype(dtype))
                                  for key, dtype in (("value", np.float32), ("image", np.int64),
                                                     ("y", np.int64), ("x", np.int64))),
                        spatial=tuple(part["spatial"]))
        if "nonfinite_images" in part:  # shards mined before non-finite values were recorded have none
            miner.layers[layer].note_missing(part["nonfinite_images"], part["nonfinite_pairs"],
                                             int(part["nonfinite_activations"]))
    return miner.result()[layer]


def topk_from_stats(values: np.ndarray, argmax: np.ndarray, k: int, chunk: int = 4096,
                    spatial: tuple[int, int] = (1, 1), negative: bool = False,
                    layer: str = "layer") -> dict[str, np.ndarray]:
    """Top-K from the features stage's (N, C) spatial maxima and (N, C, 2) positions (bottom-K
    from its minima and their positions with ``negative``), streamed in chunks (works on
    memory-mapped arrays); K is capped at the number of images. NaN statistics (the features
    stage's mark of a map with non-finite values) are left out; their activations were counted
    there (``nonfinite_activations`` is -1 here). ``layer`` names the layer in messages."""
    n = len(values)
    miner = Miner(patch_count(k, n), negative)
    for start in range(0, n, chunk):
        # copies: torch warns on (and must not write to) read-only memory-mapped arrays
        block = torch.from_numpy(np.array(values[start : start + chunk], np.float32)).T
        block = torch.where(torch.isfinite(block), block, torch.nan)
        where = torch.from_numpy(np.array(argmax[start : start + chunk], np.int64))
        image = torch.arange(start, start + block.shape[1]).expand_as(block)
        miner.add_stats(layer, block, image, where[..., 0].T, where[..., 1].T, spatial)
        miner.record_missing(layer, block, start)
    if n:
        miner.layers[layer].nonfinite_activations = -1  # counted by the features stage, not here
    return miner.result()[layer]
