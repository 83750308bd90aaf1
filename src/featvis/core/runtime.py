"""What every pipeline script does first: log to its file, seed, fix threads, pick a device.

Torch is touched only in jobs that have imported it already (their modules do, at import time):
a job that merges arrays, fits an embedding or writes pages does not pay torch's import.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


def start_job(log_files: list[str], compute: Mapping[str, Any] | None = None) -> torch.device | None:
    """Send logging and stderr to the job's log (featvis.core.progress also prints on the console);
    seed and choose the device.

    Returns the device, or None in a job that has not imported torch.
    """
    if log_files:
        sys.stderr = open(log_files[0], "w", buffering=1)  # noqa: SIM115 - lives as long as the job
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    compute = compute or {}
    reseed(compute)
    if "torch" not in sys.modules:
        return None
    import torch

    from featvis.core.device import pick_device

    device = pick_device(compute.get("device", "auto"))
    logging.getLogger("featvis").info("device %s, %d threads", device, torch.get_num_threads())
    return device


def reseed(compute: Mapping[str, Any] | None = None) -> None:
    """Every generator seeded (and torch's threads fixed) as at the start of a fresh job."""
    compute = compute or {}
    seed, threads = int(compute.get("seed", 0)), int(compute.get("threads", 1))
    if "torch" in sys.modules:
        from featvis.core.device import make_deterministic

        make_deterministic(seed, threads)
    else:
        np.random.seed(seed % 2**32)
        random.seed(seed)


def each_layer(layers: Iterable[T], compute: Mapping[str, Any] | None = None) -> Iterator[T]:
    """The layers of a job that loops over them, each started as its own job would be
    (generators reseeded), so a layer's outputs do not depend on the layers before it."""
    log = logging.getLogger("featvis")
    for layer in layers:
        reseed(compute)
        log.info("layer %s", layer)
        yield layer
