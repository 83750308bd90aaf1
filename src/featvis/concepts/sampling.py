"""A seeded, bounded sample of a layer's positions, streamed over the dataset.

What is sampled: every position of a layer's grid is one row (its C channels). From each image,
``positions_per_image`` positions are drawn uniformly without replacement (all of them when the
grid is smaller); a non-spatial (N, C) layer gives one row per image. Each drawn position gets a
random key; the sample keeps the ``max_positions`` rows with the smallest keys (bottom-k
sampling): a uniform sample without replacement of all drawn positions, whatever the batch size
or the shard split, so shard samples merge exactly (:func:`merge_samples`). Draws and keys come
from a seeded hash of (image index, position): the sample does not depend on batching.

Memory is the budget (``max_positions`` x C floats) plus one batch: flat in the dataset size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch


def _hash(image: np.ndarray, position: np.ndarray, salt: np.uint64) -> np.ndarray:
    """A pseudo-random uint64 per (salt, image, position), splitmix64 of their mix: the same number
    whatever the batch or shard the image arrives in."""
    with np.errstate(over="ignore"):
        z = (image * np.uint64(0x9E3779B97F4A7C15) + position * np.uint64(0xBF58476D1CE4E5B9)
             + salt * np.uint64(0x94D049BB133111EB) + np.uint64(0x2545F4914F6CDD1D))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def as_rows(activation: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """(N, C, H, W) or (N, C) -> (N, H*W, C) rows and the grid (H, W)."""
    if activation.ndim == 2:
        return activation.float()[:, None, :], (1, 1)
    if activation.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) or (N, C) activation, got shape {tuple(activation.shape)}")
    n, c, h, w = activation.shape
    return activation.float().reshape(n, c, h * w).transpose(1, 2), (h, w)


@dataclass
class PositionSample:
    """The running sample: ``rows`` (M, C), their ``keys`` (M,), image and position of each."""

    budget: int
    positions_per_image: int
    seed: int
    keys: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    rows: torch.Tensor | None = None
    image: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    position: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.int64))
    seen_images: int = 0
    seen_positions: int = 0  # positions on the images' grids
    drawn: int = 0  # positions drawn (before the budget)
    grid: tuple[int, int] = (1, 1)

    def add(self, activation: torch.Tensor, start: int) -> None:
        """One batch of images ``start .. start + N``."""
        rows, self.grid = as_rows(activation.detach().cpu())
        n, p, _ = rows.shape
        take = min(self.positions_per_image, p)
        images = np.arange(start, start + n, dtype=np.uint64)[:, None]
        places = np.arange(p, dtype=np.uint64)[None, :]
        # which positions of each image: the `take` smallest of a per-(seed, image, position) hash
        draw = _hash(images, places, np.uint64(2 * self.seed))
        where = torch.from_numpy(np.argsort(draw, axis=1, kind="stable")[:, :take].astype(np.int64))
        keys = _hash(images, where.numpy().astype(np.uint64), np.uint64(2 * self.seed + 1))
        picked = rows.gather(1, where[:, :, None].expand(-1, -1, rows.shape[2]))
        self.seen_images += n
        self.seen_positions += n * p
        self.drawn += n * take
        image = torch.arange(start, start + n, dtype=torch.int64)[:, None].expand(-1, take)
        self._keep(torch.from_numpy((keys >> np.uint64(11)).astype(np.int64)).flatten(), picked.reshape(n * take, -1),
                   image.reshape(-1), where.reshape(-1))

    def _keep(self, keys: torch.Tensor, rows: torch.Tensor, image: torch.Tensor, position: torch.Tensor) -> None:
        if self.rows is not None:
            keys = torch.cat((self.keys, keys))
            rows = torch.cat((self.rows, rows))
            image = torch.cat((self.image, image))
            position = torch.cat((self.position, position))
        if len(keys) > self.budget:
            order = torch.argsort(keys, stable=True)[: self.budget]
            keys, rows, image, position = keys[order], rows[order], image[order], position[order]
        self.keys, self.rows, self.image, self.position = keys, rows, image, position

    def ordered_rows(self) -> torch.Tensor:
        """The sample in a fixed order (by image, then position): fits do not depend on arrival order."""
        order = torch.argsort(self.image * (self.grid[0] * self.grid[1] + 1) + self.position, stable=True)
        return self.rows[order]

    def describe(self) -> dict:
        """What was sampled, for the quality JSON and the docs."""
        return {"images": self.seen_images, "grid": list(self.grid), "positions_in_dataset": self.seen_positions,
                "positions_per_image": min(self.positions_per_image, self.grid[0] * self.grid[1]),
                "positions_drawn": self.drawn, "budget": self.budget,
                "positions_fitted": 0 if self.rows is None else len(self.rows),
                "how": "positions_per_image positions per image, uniform without replacement (a seeded hash of image "
                       "and position); "
                       "if more were drawn than the budget, a uniform sample of `budget` of them "
                       "(bottom-k of seeded keys)"}


def sample_positions(batches: Iterable[tuple[int, torch.Tensor]], budget: int, positions_per_image: int,
                     seed: int) -> PositionSample:
    """Stream ``(start, activation)`` batches into a bounded sample."""
    sample = PositionSample(int(budget), int(positions_per_image), int(seed))
    for start, activation in batches:
        sample.add(activation, start)
    return sample


def merge_samples(parts: Iterable[PositionSample]) -> PositionSample:
    """Shard samples (same budget and seed) merged: exactly the sample one pass would have kept."""
    parts = list(parts)
    out = PositionSample(parts[0].budget, parts[0].positions_per_image, parts[0].seed)
    for part in parts:
        if part.rows is not None:
            out._keep(part.keys, part.rows, part.image, part.position)
        out.seen_images += part.seen_images
        out.seen_positions += part.seen_positions
        out.drawn += part.drawn
        out.grid = part.grid if part.rows is not None else out.grid
    return out
