"""The one place that chooses where computation runs and how many threads it uses."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

# cuBLAS picks its reduction split from a shared workspace unless this fixes one; read when cuBLAS
# starts (the first matrix product on a GPU), so it must be set before that. ":16:8" also works.
CUBLAS_WORKSPACE = ":4096:8"
_DETERMINISTIC_CUBLAS = (CUBLAS_WORKSPACE, ":16:8")


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
    """Seed every generator, fix the CPU thread count and refuse nondeterministic kernels.

    Float reductions depend on the thread count, so figures are only byte-identical
    across runs when ``threads`` comes from the config, never from free cores. Deterministic
    algorithms are enforced, not warned about: on CUDA an op with no deterministic kernel
    raises (naming the op) instead of silently changing the last bits from run to run; the
    render's own resampling avoids such ops (``featvis.render.transforms``).
    """
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") not in _DETERMINISTIC_CUBLAS:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
