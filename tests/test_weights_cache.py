"""Caches follow the weights: replacing a model's weights file at the same path (same size, even
with its old modification time put back) reruns exactly that model's stages, and nothing else."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from featvis.vision.models import MnistCNN
from workflow_helpers import checkout, snakemake, write_config

pytestmark = pytest.mark.integration


def save_weights(path, seed):
    torch.manual_seed(seed)
    torch.save(MnistCNN().state_dict(), path)


def planned_outputs(result):
    text = result.stdout + result.stderr
    return text, set(re.findall(r"output: results/(?:models|features)/(\w+)/", text))


def test_replaced_weights_rerun_that_model_only(tmp_path):
    root = checkout(tmp_path / "featvis")
    rng = np.random.default_rng(0)
    for i in range(6):
        (root / f"digits/{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L").save(root / f"digits/{i % 2}/{i}.png")
    save_weights(root / "a.pt", 1)
    save_weights(root / "b.pt", 2)
    config = write_config(root / "two.yaml", {
        "threads": 1,
        "datasets": {"digits": {"source": "folder", "path": "digits"}},
        "models": {name: {"architecture": "mnist_cnn", "weights": f"{name}.pt"} for name in ("a", "b")},
        "analyses": [{"model": name, "dataset": "digits", "layers": ["conv2"]} for name in ("a", "b")],
    })
    targets = [f"results/{kind}" for name in ("a", "b")
               for kind in (f"models/{name}/layers.tsv", f"features/{name}/digits/conv2/max.npy")]
    first = snakemake(root, config, *targets)
    assert first.returncode == 0, (first.stdout + first.stderr)[-4000:]
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(root, config, "-n", *targets))

    b_max = root / "results/features/b/digits/conv2/max.npy"
    a_before, b_stamp = np.load(root / "results/features/a/digits/conv2/max.npy"), b_max.stat().st_mtime_ns
    old = (root / "a.pt").stat()
    save_weights(root / "a.pt", 3)  # new weights, same path and size ...
    os.utime(root / "a.pt", ns=(old.st_atime_ns, old.st_mtime_ns))  # ... and the old modification time
    assert (root / "a.pt").stat().st_size == old.st_size

    text, models = planned_outputs(snakemake(root, config, "-n", *targets))
    assert models == {"a"}, text[-3000:]
    assert "layer_table" in text and "features_shard" in text and "Params have changed" in text
    rerun = snakemake(root, config, *targets)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-4000:]
    assert not np.array_equal(np.load(root / "results/features/a/digits/conv2/max.npy"), a_before)
    assert b_max.stat().st_mtime_ns == b_stamp
