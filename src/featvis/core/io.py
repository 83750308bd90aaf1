"""Atomic, deterministic writes: arrays with JSON sidecars, tables and figures.

Every writer goes through :func:`atomic_path`, so an interrupted job never leaves a
half-written file under the final name for a later run to trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; finished files get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically (read it back with ``mmap_mode='r'``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def open_npy_writer(path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> np.memmap:
    """A memory-mapped ``.npy`` to fill in place; call :func:`commit_npy` when done."""
    tmp = Path(str(path) + ".part")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)


def commit_npy(array: np.memmap, path: str | os.PathLike) -> None:
    """Flush a writer from :func:`open_npy_writer` and move it to its final name."""
    array.flush()
    os.replace(array.filename, path)


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` atomically; via a buffer, because torch names the zip's records
    after the file, and the temporary name would otherwise change the bytes."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions that decide the bits of an output, for sidecars."""
    import matplotlib
    import torch

    import featvis

    return {
        "featvis": featvis.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "matplotlib": matplotlib.__version__,
    }


def write_sidecar(path: str | os.PathLike, **fields: Any) -> None:
    """JSON metadata next to an array: what made it and from what."""
    write_json(path, {**fields, "versions": library_versions()})
