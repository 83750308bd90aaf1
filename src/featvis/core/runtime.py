"""What every pipeline script does first: log to its file, seed, fix threads, pick a device."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

import torch

from featvis.core.device import make_deterministic, pick_device


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
