"""Streaming passes over a dataset: activations in batches, never the whole tensor.

:func:`layer_batches` yields ``(start, {layer: activation})`` per batch (one forward pass serves
every concept layer). An :class:`Encoder` turns each batch into codes at every position and keeps
(i) the exact top-K images per concept at the position where the concept is strongest
(``featvis.vision.mining.Miner``: the codes are treated as a layer with one channel per concept, so
shards merge exactly with ``merge_topk``) and (ii) :class:`~featvis.concepts.quality.CodeStats` sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from featvis.concepts.methods import Dictionary, one_thread
from featvis.concepts.quality import CodeStats
from featvis.concepts.sampling import as_rows
from featvis.core.hooks import capture, run_to_layers
from featvis.core.progress import tracked
from featvis.vision.data import iter_batches
from featvis.vision.mining import Miner

CHUNK = 65536  # positions encoded at once


@torch.no_grad()
def layer_batches(model, paths: Sequence[str], layers: Sequence[str], device: torch.device, batch_size: int = 64,
                  workers: int = 0, offset: int = 0) -> Iterator[tuple[int, dict[str, torch.Tensor]]]:
    """``(offset + start, {layer: activation})`` for each batch of images at ``paths`` (progress on the console)."""
    module = model.module.to(device)
    batches = iter_batches(list(paths), model.preprocess, batch_size, workers, pin_memory=device.type == "cuda")
    with capture(module, list(layers), stop_early=True) as outputs:
        for start, batch in tracked(batches, -(-len(paths) // batch_size), f"concepts {model.name}", "batches"):
            run_to_layers(module, batch.to(device), outputs)
            yield offset + start, {name: outputs[name].detach().float().cpu() for name in layers}


def _chunked(fn, rows: torch.Tensor) -> torch.Tensor:
    return torch.cat([fn(rows[i : i + CHUNK]) for i in range(0, len(rows), CHUNK)])


def codes_map(dictionary: Dictionary, activation: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) or (N, C) activation -> (N, K, H, W) or (N, K) codes."""
    rows, (h, w) = as_rows(activation)
    n, p, c = rows.shape
    with one_thread():  # small products: one thread is many times faster on busy cores
        codes = _chunked(dictionary.encode, rows.reshape(n * p, c)).reshape(n, p, -1).transpose(1, 2)
    return codes.reshape(n, -1, h, w) if activation.ndim == 4 else codes[:, :, 0]


class Encoder:
    """One dictionary's streamed codes: a partial top-K (a shard's) and code statistics.
    ``labels`` are label indices per image of the whole manifest (-1: none)."""

    def __init__(self, dictionary: Dictionary, k: int, labels: np.ndarray | None = None, n_labels: int = 0) -> None:
        self.dictionary, self.labels, self.n_labels = dictionary, labels, n_labels
        self.miner = Miner(k)
        self.stats = CodeStats.empty(int(dictionary.atoms.shape[1]), dictionary.n_concepts, n_labels)

    @torch.no_grad()
    def add(self, start: int, activation: torch.Tensor) -> None:
        with one_thread():  # small products: one thread is many times faster (50x on two busy cores)
            self._add(start, activation)

    def _add(self, start: int, activation: torch.Tensor) -> None:
        rows, _ = as_rows(activation)
        n, p, c = rows.shape
        flat = rows.reshape(n * p, c)
        codes = _chunked(self.dictionary.encode, flat)
        per_image = codes.reshape(n, p, -1)
        labels = None if self.labels is None else self.labels[start : start + n]
        self.stats.add(_chunked(self.dictionary.prepare, flat), codes, self.dictionary.decode(codes),
                       per_image.amax(1), labels)
        grid = per_image.transpose(1, 2)
        self.miner.add({"concepts": grid.reshape(n, -1, *activation.shape[2:]) if activation.ndim == 4
                        else grid[:, :, 0]}, start)

    def result(self) -> tuple[dict[str, np.ndarray] | None, CodeStats]:
        top = self.miner.result(partial=True).get("concepts")
        return top, self.stats


def encode_pass(dictionary: Dictionary, batches: Iterable[tuple[int, torch.Tensor]], k: int,
                labels: np.ndarray | None = None, n_labels: int = 0) -> tuple[dict[str, np.ndarray] | None, CodeStats]:
    """Stream one layer's ``(start, activation)`` batches through an :class:`Encoder`."""
    encoder = Encoder(dictionary, k, labels, n_labels)
    for start, activation in batches:
        encoder.add(start, activation)
    return encoder.result()
