"""featvis.core.runtime: a job that does not use torch does not import it, and a job that loops
over layers starts each layer as a fresh job would."""

from __future__ import annotations

import ast
import random
import subprocess
import sys

import numpy as np
import torch


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_a_job_without_torch_does_not_import_it(tmp_path):
    log = tmp_path / "job.log"
    out = run_python(f"import sys; from featvis.core.runtime import start_job; "
                     f"print(start_job([{str(log)!r}], {{'seed': 3, 'threads': 1}}), 'torch' in sys.modules)")
    assert out == "None False"


def test_a_job_with_torch_gets_a_device_and_fixed_threads(tmp_path):
    log = tmp_path / "job.log"
    out = run_python(f"import torch; from featvis.core.runtime import start_job; "
                     f"print(start_job([{str(log)!r}], {{'seed': 3, 'threads': 1, 'device': 'cpu'}}), "
                     f"torch.get_num_threads())")
    assert out == "cpu 1"
    assert "device cpu, 1 threads" in log.read_text()


def test_each_layer_reseeds_so_layers_do_not_depend_on_each_other():
    # in a fresh process: reseeding fixes torch's threads, which must not leak into other tests
    for imports in ("", "import torch; "):
        out = run_python(f"{imports}import random, numpy as np; from featvis.core.runtime import each_layer; "
                         f"print([(np.random.rand(), random.random()) for _ in each_layer('abc', {{'seed': 5}})])")
        draws = ast.literal_eval(out)
        assert len(draws) == 3 and draws == [(np.random.RandomState(5).rand(), random.Random(5).random())] * 3
    out = run_python("import torch; from featvis.core.runtime import each_layer; "
                     "print([torch.rand(1).item() for _ in each_layer('ab', {'seed': 5})])")
    assert ast.literal_eval(out) == [torch.rand(1, generator=torch.Generator().manual_seed(5)).item()] * 2


def test_parsing_the_workflow_imports_no_torch_once_structures_are_cached(tmp_path):
    """`snakemake -n` on the embedded default: the first parse traces the models (torch), the next
    reads the cached structures and imports no torch (measured: 2.6 s -> 1.3 s per dry run)."""
    from workflow_helpers import checkout, snakemake_command

    root = checkout(tmp_path / "featvis")
    first = subprocess.run([*snakemake_command(), "-n", "--cores", "2"], cwd=root, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]
    again = subprocess.run([sys.executable, "-X", "importtime", "-m", "snakemake", "-n", "--cores", "2"], cwd=root,
                           capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in again.stderr.splitlines() if line.startswith("import time:")}
    assert "featvis.vision.checks" in imported  # the start checks ran ...
    assert "torch" not in imported and "featvis.vision.data" not in imported  # ... without torch
