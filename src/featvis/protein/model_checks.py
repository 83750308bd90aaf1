"""The protein model, checked at start: loaded once (this finds a missing or unreadable checkpoint
before any job), measured with one short calibration pass, and cached.

The cache (one small JSON per model spec, threads, device and scan batch) holds the architecture and the
measured speed; a later start reads it without importing torch, unless a file the model was read
from has changed or gone, which loads it again (and so reports the missing file).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from featvis.core.io import write_json
from featvis.protein.estimate import Architecture, pass_operations

CACHE_VERSION = 2  # raise when what an entry holds changes: older ones are measured again
# The calibration times one model layer on a batch of the scan's size at 510 residues: the scan's
# shape (long windows run several times faster per operation than short ones) at 1/layers of a pass.
CALIBRATION_RESIDUES = 510
HF_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


class ProteinModelError(ValueError):
    """The configured protein model cannot be read."""


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "torch" / "hub"


def model_sources(spec: str) -> list[str]:
    """The files a spec is read from (their sizes and times decide whether the cache still holds)."""
    if spec.startswith("random:"):
        return []
    if spec == "antiberty":
        import importlib.util

        found = importlib.util.find_spec("antiberty")
        root = Path(next(iter(found.submodule_search_locations))) if found else Path("antiberty")
        return [str(root / "trained_models" / "AntiBERTy_md_smooth" / "pytorch_model.bin")]
    path = Path(spec)
    if spec.startswith("esm2_") and not path.suffix:
        path = _torch_hub_dir() / "checkpoints" / f"{spec}.pt"
    if path.is_dir() or (not path.suffix and "/" in spec and not path.exists()):
        from featvis.protein.models import hf_folder

        folder = hf_folder(spec) or path
        return [str(folder / name) for name in HF_FILES if (folder / name).exists()] or [str(folder / "config.json")]
    regression = path.with_name(path.stem + "-contact-regression.pt")
    return [str(path)] + ([str(regression)] if regression.is_file() else [])


def _stat(path: str) -> list[int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns]


def inspect_model(spec: str, cache_dir: str | os.PathLike, seed: int = 0, threads: int = 1,
                  device: str = "auto", batch: int = 8) -> dict[str, Any]:  # fmt: skip
    """``{"name", "layers", "heads", "dim", "vocab", "max_residues", "operations_per_second", ...}``
    of the configured model, from the cache or by loading it now; raises ``ProteinModelError``."""
    key = hashlib.sha256(json.dumps([CACHE_VERSION, spec, threads, device, batch]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"protein-{key}.json"
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = None
    sources = model_sources(spec)
    if cached and cached.get("sources") == [[s, _stat(s)] for s in sources] and all(_stat(s) for s in sources):
        return cached
    entry = _load_and_calibrate(spec, seed, threads, device, batch)
    entry["sources"] = [[s, _stat(s)] for s in model_sources(spec)]
    write_json(path, entry)
    return entry


def _load_and_calibrate(spec: str, seed: int, threads: int, device: str, batch: int) -> dict[str, Any]:
    import torch

    from featvis.core.device import pick_device
    from featvis.protein.models import ModelUnavailableError, load_protein_model

    try:
        lm = load_protein_model(spec, seed=seed)
    except ModelUnavailableError as err:
        raise ProteinModelError(f"attention.model {spec!r}: {err}") from None
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        lm.to(_here(pick_device, device))
        arch = Architecture(lm.num_layers, _width(lm), _vocabulary(lm), lm.max_residues)
        residues = min(CALIBRATION_RESIDUES, lm.max_residues)
        seconds = lm.num_layers * _time_one_layer(lm, residues, batch)
    finally:
        torch.set_num_threads(before)
    tokens = residues + 2
    return {"name": lm.name, "layers": arch.layers, "heads": lm.num_heads, "dim": arch.dim, "vocab": arch.vocab,
            "max_residues": arch.max_residues,
            "calibration": {"tokens": tokens, "batch": batch, "seconds_per_pass": round(seconds / batch, 4)},
            "operations_per_second": batch * pass_operations(arch, tokens) / max(seconds, 1e-6)}  # fmt: skip


def _here(pick_device, device: str):
    """The device to time on: the one asked for, or the CPU where this machine lacks it (a cluster's head
    node plans jobs that run on GPU nodes); the estimate is then the CPU's, an upper bound."""
    import torch

    chosen = pick_device(device)
    missing = (chosen.type == "cuda" and not torch.cuda.is_available()) or (
        chosen.type == "mps" and not torch.backends.mps.is_available())
    return torch.device("cpu") if missing else chosen


def _width(lm) -> int:
    return int(lm.module.get_input_embeddings().weight.shape[1])


def _vocabulary(lm) -> int:
    return int(lm.module.get_input_embeddings().weight.shape[0])


def _layer_list(module):
    """The model's stack of layers (a ModuleList as long as its layer count)."""
    from torch import nn

    for child in module.modules():
        if isinstance(child, nn.ModuleList) and len(child) >= 1 and hasattr(child[0], "attention"):
            return child
    raise ProteinModelError(f"cannot find the layers of {type(module).__name__} to time a pass")


def _time_one_layer(lm, residues: int, batch: int) -> float:
    """Seconds of a logits-only pass through the first layer alone, ``batch`` copies of ``residues``
    (the faster of two, after a warm-up): the scan's shape at the cost of one layer, not all."""
    import torch

    layers = _layer_list(lm.module)
    rest = list(layers)[1:]
    tokens = lm.encode("A" * residues).repeat(batch, 1)
    try:
        del layers[1:]
        with torch.inference_mode():
            lm.logits(tokens[:1, :10])  # warm-up: first-call allocations
            times = []
            for _ in range(2):
                start = time.perf_counter()
                lm.logits(tokens)
                times.append(time.perf_counter() - start)
    finally:
        layers.extend(rest)
    return min(times)


def architecture(entry: dict[str, Any]) -> Architecture:
    return Architecture(entry["layers"], entry["dim"], entry["vocab"], entry["max_residues"])
