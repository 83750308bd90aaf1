"""Atomic writes leave nothing behind when killed; figures are byte-reproducible."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np

from featvis.core.figures import image_grid, plt, save_figure
from featvis.core.io import atomic_path, sha256_file, write_json

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


def test_killed_writer_leaves_no_file(tmp_path):
    target = tmp_path / "out.bin"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
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
