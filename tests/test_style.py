"""The code base stays ruff-clean (the project's lint settings live in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    folders = [str(ROOT / name) for name in ("src", "scripts", "tests", "benchmarks") if (ROOT / name).exists()]
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *folders], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
