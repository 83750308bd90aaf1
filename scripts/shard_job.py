"""The Snakemake side of a per-shard rule (features, patches): device, model, this shard's images."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from featvis.core.runtime import start_job


class ShardJob(NamedTuple):
    device: torch.device
    model: Any
    paths: list[str]  # this shard's images
    start: int  # index of its first image in the manifest
    n_images: int  # images in the whole manifest


def start_shard_job(sm: Any) -> ShardJob:
    """Common start of a per-shard rule: device, model and this shard's slice of images.

    Reads ``params.spec``, ``params.model``, ``params.compute``, ``params.layers``,
    ``params.shard``, ``params.n_shards`` and ``input.manifest``; every layer name is
    checked before any work is done.
    """
    from featvis.core.hooks import get_layer
    from featvis.vision.data import read_manifest
    from featvis.vision.features import shard_slices
    from featvis.vision.models import load_model

    device = start_job(sm.log, sm.params.compute)
    model = load_model(sm.params.spec, sm.params.model)
    for layer in sm.params.layers:
        get_layer(model.module, layer)
    paths = read_manifest(sm.input.manifest)["path"].tolist()
    slices = shard_slices(len(paths), sm.params.n_shards)
    # More shards than images: the extra shards are empty (their output folder has no files).
    start, stop = slices[sm.params.shard] if sm.params.shard < len(slices) else (len(paths), len(paths))
    return ShardJob(device, model, paths[start:stop], start, len(paths))
