"""docs/notebook.ipynb runs from top to bottom in a real Jupyter kernel (nbclient + ipykernel), and
its outputs say what the featvis.api calls are known to give on the shipped data."""

from __future__ import annotations

import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

from workflow_helpers import ROOT

pytestmark = pytest.mark.integration


def text_of(cell) -> str:
    return "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def test_notebook_runs_and_shows_each_result(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(ROOT / "docs" / "notebook.ipynb", as_version=4)
    where = {"metadata": {"path": str(tmp_path)}}  # the kernel's working directory
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources=where)
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [out for cell in code for out in cell.outputs if out.get("output_type") == "error"]
    assert not errors, errors
    printed = "\n".join(text_of(cell) for cell in code)
    assert "54 images in 18 classes" in printed  # the bundled photos: one class per photo
    assert "render (96, 96, 3) uint8" in printed and "any nn.Module: (64, 64, 3)" in printed
    field = re.search(r"receptive field (\d+)x(\d+) px, stride (\d+)", printed)
    assert field and field.group(1) == field.group(2) and int(field.group(3)) == 8  # _blocks.4: 1/8 resolution
    assert len(re.findall(r"^channel \d: \[", printed, flags=re.M)) == 3
    assert re.search(r"Grad-CAM: \w[\w ]* cat \(\d+\.\d%\)", printed)  # chelsea is a cat to ImageNet weights
    assert "residues: 120 |" in printed and "random ESM-2: (22,)" in printed
    images = sum("image/png" in out.get("data", {}) for cell in code for out in cell.outputs)
    assert images == 4  # the render, the patch grid, Grad-CAM and the importance profile
