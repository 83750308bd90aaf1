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


def test_rule_files_are_snakefmt_clean():
    """The Snakemake workflow catalog's formatting standard (`snakefmt --check`)."""
    snakefmt = Path(sys.executable).with_name("snakefmt")
    result = subprocess.run([str(snakefmt), "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_snakemake_lint_is_clean():
    """`snakemake --lint` on the embedded default finds nothing: every rule names its conda environment,
    rule files hold no functions (workflow/rules/functions/), paths come from outputs, PYTHONPATH is declared."""
    from workflow_helpers import run

    result = run(ROOT, "--lint")
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("    * ")]
    assert result.returncode == 0 and not findings, (result.stdout + result.stderr)[-3000:]
