"""What every pipeline script does first: log to its file, seed, fix threads, pick a device."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from featvis.device import make_deterministic, pick_device


def start_job(log_files: list[str], compute: Mapping[str, Any] | None = None) -> torch.device:
    """Send logging and stderr (tqdm progress) to the job's log; seed and choose the device."""
    if log_files:
        sys.stderr = open(log_files[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    compute = compute or {}
    make_deterministic(int(compute.get("seed", 0)), int(compute.get("threads", 1)))
    device = pick_device(compute.get("device", "auto"))
    logging.getLogger("featvis").info("device %s, %d threads", device, torch.get_num_threads())
    return device


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
    from featvis.data import read_manifest
    from featvis.features import shard_slices
    from featvis.hooks import get_layer
    from featvis.models import load_model

    device = start_job(sm.log, sm.params.compute)
    model = load_model(sm.params.spec, sm.params.model)
    for layer in sm.params.layers:
        get_layer(model.module, layer)
    paths = read_manifest(sm.input.manifest)["path"].tolist()
    start, stop = shard_slices(len(paths), sm.params.n_shards)[sm.params.shard]
    return ShardJob(device, model, paths[start:stop], start, len(paths))
