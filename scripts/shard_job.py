"""The Snakemake side of a per-shard rule (features, patches): device, model, this shard's images,
and a failure that names the shard and its images."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch

from featvis.core.runtime import start_job


class ShardJob(NamedTuple):
    device: torch.device
    model: Any
    paths: list[str]  # this shard's images
    start: int  # index of its first image in the manifest
    n_images: int  # images in the whole manifest


class ShardJobError(RuntimeError):
    """A per-shard job that failed; the message names the shard and its images, the cause is chained."""


def shard_range(n_images: int, n_shards: int, shard: int) -> tuple[int, int]:
    """[start, stop) of this shard's images; more shards than images leaves the extra shards
    empty (their output folder has no files)."""
    from featvis.vision.features import shard_slices

    slices = shard_slices(n_images, n_shards)
    return slices[shard] if shard < len(slices) else (n_images, n_images)


def describe_shard(stage: str, shard: int, n_shards: int, paths: list[str], start: int, stop: int) -> str:
    """e.g. "features shard 3 of 8 (images 2000-2999 of 8000, first photos/x.jpg)"; shard
    numbers from 1, image numbers are manifest rows from 0."""
    images = (f"images {start}-{stop - 1} of {len(paths)}, first {paths[start]}" if stop > start
              else f"no images: {len(paths)} images for {n_shards} shards")
    return f"{stage} shard {shard + 1} of {n_shards} ({images})"


@contextmanager
def naming_shard(description: str) -> Iterator[None]:
    """Re-raise any failure as a :class:`ShardJobError` that starts with ``description``."""
    try:
        yield
    except Exception as error:
        raise ShardJobError(f"{description} failed: {type(error).__name__}: {error}") from error


def run_shard_job(sm: Any, stage: str, work: Callable[[ShardJob], None]) -> None:
    """A per-shard rule: start (log, seed, device), read this shard's slice of the manifest,
    load the model (every layer name checked before any work) and run ``work``; a failure
    names the shard and its images, and the job still fails with the cause chained.

    Reads ``params.spec``, ``params.model``, ``params.compute``, ``params.layers``,
    ``params.shard``, ``params.n_shards`` and ``input.manifest``.
    """
    from featvis.core.hooks import get_layer
    from featvis.vision.data import read_manifest
    from featvis.vision.models import load_model

    device = start_job(sm.log, sm.params.compute)
    paths = read_manifest(sm.input.manifest)["path"].tolist()
    start, stop = shard_range(len(paths), sm.params.n_shards, sm.params.shard)
    with naming_shard(describe_shard(stage, sm.params.shard, sm.params.n_shards, paths, start, stop)):
        model = load_model(sm.params.spec, sm.params.model)
        for layer in sm.params.layers:
            get_layer(model.module, layer)
        work(ShardJob(device, model, paths[start:stop], start, len(paths)))
