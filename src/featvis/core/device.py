"""The one place that chooses where computation runs and how many threads it uses."""

from __future__ import annotations

import random

import numpy as np
import torch


def pick_device(preference: str = "auto") -> torch.device:
    """Return CUDA, then MPS, then CPU for ``"auto"``; otherwise the named device."""
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_deterministic(seed: int, threads: int) -> None:
    """Seed every generator and fix the CPU thread count.

    Float reductions depend on the thread count, so figures are only byte-identical
    across runs when ``threads`` comes from the config, never from free cores.
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
