"""Streaming passes over a dataset for one layer: activations in batches, never the whole tensor.

:func:`layer_batches` yields ``(start, activation)`` per batch; :func:`encode_pass` turns each
batch into codes at every position and keeps (i) the exact top-K images per concept at the
position where the concept is strongest (``featvis.vision.mining.Miner``: the codes are treated
as a layer with one channel per concept, so shards merge exactly with ``merge_topk``) and (ii)
:class:`~featvis.concepts.quality.CodeStats` sums.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from featvis.concepts.methods import Dictionary
from featvis.concepts.quality import CodeStats
from featvis.concepts.sampling import as_rows
from featvis.core.hooks import capture, run_to_layers
from featvis.vision.data import iter_batches
from featvis.vision.mining import Miner


@torch.no_grad()
def layer_batches(model, paths: Sequence[str], layer: str, device: torch.device, batch_size: int = 64,
                  workers: int = 0, offset: int = 0) -> Iterator[tuple[int, torch.Tensor]]:
    """``(offset + start, activation)`` of ``layer`` for each batch of images at ``paths``."""
    module = model.module.to(device)
    with capture(module, [layer], stop_early=True) as outputs:
        for start, batch in iter_batches(paths, model.preprocess, batch_size, workers,
                                         pin_memory=device.type == "cuda"):
            run_to_layers(module, batch.to(device), outputs)
            yield offset + start, outputs[layer].detach().float().cpu()


def codes_map(dictionary: Dictionary, activation: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """(N, C, H, W) or (N, C) activation -> (N, K, H, W) or (N, K) codes."""
    rows, (h, w) = as_rows(activation)
    n, p, c = rows.shape
    flat = rows.reshape(n * p, c)
    codes = torch.cat([dictionary.encode(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
    codes = codes.reshape(n, p, -1).transpose(1, 2)
    return codes.reshape(n, -1, h, w) if activation.ndim == 4 else codes[:, :, 0]


@torch.no_grad()
def encode_pass(dictionary: Dictionary, batches: Iterable[tuple[int, torch.Tensor]], k: int,
                labels: np.ndarray | None = None, n_labels: int = 0,
                chunk: int = 65536) -> tuple[dict[str, np.ndarray], CodeStats]:
    """Stream batches into the concepts' top-K (partial: a shard's, for ``merge_topk``) and their
    code statistics. ``labels`` are label indices per image (indexed by image number, -1: none)."""
    miner = Miner(k)
    stats = None
    for start, activation in batches:
        rows, _ = as_rows(activation)
        n, p, c = rows.shape
        flat = rows.reshape(n * p, c)
        prepared = torch.cat([dictionary.prepare(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
        codes = torch.cat([dictionary.encode(flat[i : i + chunk]) for i in range(0, len(flat), chunk)])
        recon = dictionary.decode(codes)
        if stats is None:
            stats = CodeStats.empty(c, dictionary.n_concepts, n_labels)
        image_max = codes.reshape(n, p, -1).amax(1)
        stats.add(prepared, codes, recon, image_max, None if labels is None else labels[start : start + n])
        grid = codes.reshape(n, p, -1).transpose(1, 2)
        shaped = grid.reshape(n, -1, *activation.shape[2:]) if activation.ndim == 4 else grid[:, :, 0]
        miner.add({"concepts": shaped}, start)
    if stats is None:
        return {}, CodeStats.empty(int(dictionary.atoms.shape[1]), dictionary.n_concepts, n_labels)
    return miner.result(partial=True)["concepts"], stats
