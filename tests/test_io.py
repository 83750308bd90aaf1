"""Atomic writes leave nothing behind when killed; figures are byte-reproducible."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from featvis.core.figures import image_grid, plt, save_figure
from featvis.core.io import (
    atomic_path,
    copy_file,
    link_or_copy,
    npy_writer,
    save_image,
    save_npz,
    sha256_file,
    write_json,
)

WRITER = """
import sys, time
from featvis.core.io import atomic_path
with atomic_path(sys.argv[1]) as tmp, open(tmp, "wb") as handle:
    handle.write(b"half")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
    handle.write(b"rest")
"""


def killed_writer(target):
    """A process killed while it writes ``target`` (its temporary half written)."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process


def test_killed_writer_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    killed_writer(target)
    time.sleep(0.1)
    assert not target.exists()  # only a .part file may remain, never the final name


def test_failed_write_removes_temporary(tmp_path):
    target = tmp_path / "x.json"
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_write_json_is_stable(tmp_path):
    write_json(tmp_path / "a.json", {"b": np.float32(1.5), "a": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1.5\n}\n'


def test_figures_are_byte_identical(tmp_path):
    open_before = len(plt.get_fignums())
    images = [np.random.default_rng(i).random((8, 8, 3)) for i in range(5)]
    for name in ("a", "b"):
        for suffix in (".png", ".svg", ".pdf"):
            save_figure(image_grid(images, 3, suptitle="same"), tmp_path / f"{name}{suffix}")
    for suffix in (".png", ".svg", ".pdf"):
        assert sha256_file(tmp_path / f"a{suffix}") == sha256_file(tmp_path / f"b{suffix}")
    assert len(plt.get_fignums()) == open_before  # save_figure closes what it saved


# --- every write is atomic ------------------------------------------------------------

def test_killed_writers_temporary_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "out.bin"
    process = killed_writer(target)
    stray = [p.name for p in tmp_path.iterdir()]
    assert len(stray) == 1 and stray[0].startswith(f".out.bin.{process.pid}.") and stray[0].endswith(".part")
    other = tmp_path / f".out.bin.5.{process.pid}.abc.part"  # another name's temporary: not touched
    other.write_text("")
    live = tmp_path / f".out.bin.{os.getpid()}.live.part"  # a running process's: not touched
    live.write_text("")
    write_json(target, {"done": True})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, live.name, "out.bin"])


class Unsaveable:
    """Writes half a file, then fails: as an encoder that runs out of memory would."""

    def save(self, path, **options):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")


def test_failed_writes_leave_neither_file_nor_temporary(tmp_path):
    (tmp_path / "kept.json").write_text('{"old": 1}\n')  # a failed rewrite keeps the old file whole
    attempts = [
        lambda: save_image(tmp_path / "a.png", Unsaveable(), format="PNG"),
        lambda: save_image(tmp_path / "kept.json", Unsaveable()),
        lambda: copy_file(tmp_path / "missing.png", tmp_path / "b.png"),
        lambda: link_or_copy(tmp_path / "missing.png", tmp_path / "c.png"),
        lambda: write_json(tmp_path / "d.json", {"x": object()}),
        lambda: save_npz(tmp_path / "e.npz", a=np.zeros(3), b=Unpicklable()),
    ]
    for attempt in attempts:
        with pytest.raises((OSError, TypeError, ValueError)):
            attempt()
    with pytest.raises(RuntimeError), npy_writer(tmp_path / "f.npy", (4, 2), np.float32) as array:
        array[:2] = 1.0
        raise RuntimeError("the merge failed half way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
    assert (tmp_path / "kept.json").read_text() == '{"old": 1}\n'


class Unpicklable:
    def __reduce__(self):
        raise TypeError("not an array")


def test_npy_writer_and_link_or_copy_write_whole_files(tmp_path):
    with npy_writer(tmp_path / "m.npy", (3, 2), np.int32) as array:
        array[:] = np.arange(6).reshape(3, 2)
    np.testing.assert_array_equal(np.load(tmp_path / "m.npy"), np.arange(6).reshape(3, 2))
    link_or_copy(tmp_path / "m.npy", tmp_path / "linked.npy")
    link_or_copy(tmp_path / "m.npy", tmp_path / "linked.npy")  # again over itself: still whole
    assert sha256_file(tmp_path / "linked.npy") == sha256_file(tmp_path / "m.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linked.npy", "m.npy"]


# Calls that write a file, and where they may: only on a temporary path from atomic_path
# (or a handle opened on one), or in core/io.py itself. Methods (x.save(...)), so that io's own
# helpers called by name (write_text(path, ...)) pass; shutil's copies whichever way called.
WRITE_METHODS = {"write_text", "write_bytes", "savefig", "save", "savez", "savez_compressed", "to_csv",
                 "to_parquet", "to_json", "link", "symlink", "symlink_to", "dump", "tofile", "open_memmap", "touch",
                 "imwrite", "imsave"}
SHUTIL_COPIES = {"copy", "copy2", "copyfile", "copytree"}
ALLOWED = {("src/featvis/core/runtime.py", "open"),  # the job's log file: a stream Snakemake owns, not an output
           ("src/featvis/cli.py", "open")}  # os.devnull, for a closed pipe
ROOT = Path(__file__).resolve().parents[1]


def _write_call(call: ast.Call) -> str | None:
    """The name of a call that writes a file, else None."""
    func = call.func
    if isinstance(func, ast.Name):
        if func.id == "open" and _write_mode(call):
            return "open"
        return func.id if func.id in {"copyfile", "copytree"} else None
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr in SHUTIL_COPIES:
        return func.attr if isinstance(func.value, ast.Name) and func.value.id == "shutil" else None
    if func.attr in {"to_csv", "to_json"} and not call.args and not any(
            k.arg in {"path_or_buf", "buf"} for k in call.keywords):
        return None  # gives a string, writes nothing
    return func.attr if func.attr in WRITE_METHODS else None


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _write_mode(call: ast.Call) -> bool:
    modes = [a for a in call.args[1:2]] + [k.value for k in call.keywords if k.arg == "mode"]
    return any(isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+")
               for m in modes)


def raw_writes(path: Path) -> list[str]:
    """Write calls in ``path`` whose target is not a temporary path from ``atomic_path``."""
    tree = ast.parse(path.read_text())
    label = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []

    def visit(node: ast.AST, safe: frozenset[str]) -> None:
        if isinstance(node, ast.With):
            names = set(safe)
            for item in node.items:  # `with atomic_path(x) as tmp, open(tmp, "wb") as handle`
                call = item.context_expr
                bound = _names(item.optional_vars) if item.optional_vars is not None else set()
                if isinstance(call, ast.Call) and (getattr(call.func, "id", None) == "atomic_path"
                                                   or getattr(call.func, "attr", None) == "atomic_path"):
                    names |= bound
                elif isinstance(call, ast.Call) and _names(call) & names:
                    names |= bound
            safe = frozenset(names)
        if isinstance(node, ast.Call):
            name = _write_call(node)
            if name and not (_names(node) & safe):
                found.append(f"{label}:{node.lineno}: {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, safe)

    visit(tree, frozenset())
    return [f for f in found if (f.split(":")[0], f.rsplit(": ", 1)[1]) not in ALLOWED]


def test_no_output_is_written_outside_the_atomic_helpers():
    files = [p for p in sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "scripts").rglob("*.py"))
             if p != ROOT / "src" / "featvis" / "core" / "io.py"]
    assert len(files) > 50
    offenders = [hit for path in files for hit in raw_writes(path)]
    assert offenders == [], "write through featvis.core.io (atomic_path, write_text, copy_file, ...):\n" + "\n".join(
        offenders)


def test_the_static_check_finds_raw_writes(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(textwrap.dedent("""
        import shutil
        from featvis.core.io import atomic_path
        def bad(path, fig, image, table):
            fig.savefig(path)
            image.save(path, format="PNG")
            shutil.copyfile("a", path)
            table.to_csv(path)
            with open(path, "w") as handle:
                handle.write("x")
        def good(path, fig, table):
            with atomic_path(path) as tmp:
                fig.savefig(tmp)
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                handle.write(b"x")
            with open(path) as handle:
                handle.read()
            return table.to_csv(sep="\\t")
    """))
    hits = [h.rsplit(": ", 1)[1] for h in raw_writes(sample)]
    assert hits == ["savefig", "save", "copyfile", "to_csv", "open"]
