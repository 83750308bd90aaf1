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


def featvis_imports() -> dict[str, set[str]]:
    """Each featvis module's imports of other featvis modules, at any depth (function-level too)."""
    import ast

    root = ROOT / "src"
    graph = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.with_suffix("").relative_to(root).parts).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("featvis"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("featvis")}
        graph[name] = found
    return graph


def test_no_import_cycles():
    graph = featvis_imports()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for dep in sorted(graph.get(module, ())):
            if dep in path:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in done:
                visit(dep, path + [dep])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
