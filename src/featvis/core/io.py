"""Atomic, deterministic writes: arrays with JSON sidecars, tables and figures.

Every writer goes through :func:`atomic_path`, so an interrupted job never leaves a
half-written file under the final name for a later run to trust. The temporary file is
``.<name>.<pid>.<random>.part`` beside the target: removed when the write fails with an
exception; left behind only when the process is killed, and then removed by the next write of
the same target once its process is gone (until then nothing reads it: no rule's output and no
glob of the pipeline matches a hidden ``.part`` name). Outside this module nothing under
``src/`` or ``scripts/`` writes a file directly (``tests/test_io.py`` checks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
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
    _remove_strays(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; finished files get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


# .<name>.<pid>.<random>.part (mkstemp's random part has no dots, so the split is unique)
_TEMPORARY = re.compile(r"\.(.+)\.(\d+)\.[a-z0-9_]+\.part")
_strays: dict[Path, dict[str, list[tuple[Path, int]]]] = {}  # folder -> target name -> (file, pid)


def _remove_strays(target: Path) -> None:
    """Remove the temporary files of ``target`` left by killed processes (whose pid no longer
    runs). A folder is listed once per process, when first written to: strays are older than
    this process, and a folder of thousands of gallery pages is not listed for every page."""
    folder = target.parent
    if folder not in _strays:
        found: dict[str, list[tuple[Path, int]]] = {}
        for entry in os.scandir(folder):
            match = _TEMPORARY.fullmatch(entry.name)
            if match:
                found.setdefault(match.group(1), []).append((folder / entry.name, int(match.group(2))))
        _strays[folder] = found
    for stray, pid in _strays[folder].pop(target.name, []):
        if not _running(pid):
            stray.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        pass
    return True


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def copy_file(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Copy ``source`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)


def link_or_copy(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """A hard link to ``source`` at ``path`` where the file system allows (no second copy of the
    bytes), else a copy; either way renamed into place, so ``path`` is never half there."""
    with atomic_path(path) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def save_image(path: str | os.PathLike, image: Any, **options: Any) -> None:
    """``image.save(path, **options)`` (a PIL image; give ``format``) atomically."""
    with atomic_path(path) as tmp:
        image.save(tmp, **options)


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


@contextlib.contextmanager
def npy_writer(path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> Iterator[np.memmap]:
    """A memory-mapped ``.npy`` to fill in place, flushed and renamed to ``path`` when the
    block ends without an exception (removed otherwise)."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        try:
            yield array
            array.flush()
        finally:
            mapping = getattr(array, "_mmap", None)  # release the mapping before the rename or removal
            if mapping is not None:
                mapping.close()


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
