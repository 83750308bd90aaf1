"""`train:` in a real workflow run beyond the MNIST demo: a torchvision ResNet-18 trained on a folder
laid out as train/ and val/, then its layer table and features computed from the trained weights;
and a dataset without a train split refused at start, before any job."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from test_train_checks import write_split_folder
from workflow_helpers import checkout, planned_rules, snakemake, write_config

pytestmark = pytest.mark.integration


def config_for(folder, **train):
    return {
        "seed": 0,
        "threads": 1,
        "datasets": {"colours": {"source": "folder", "path": str(folder)}},
        "models": {"net": {"architecture": "resnet18", "image_size": 32,
                           "train": {"dataset": "colours", "epochs": 1, "batch_size": 4, "workers": 0, **train}}},
        "analyses": [{"model": "net", "dataset": "colours", "layers": ["layer1", "fc"]}],
        "features": {"batch_size": 6},
    }


TARGETS = ["results/models/net/training.json", "results/models/net/layers.tsv",
           "results/features/net/colours/fc/max.npy", "results/features/net/colours/layer1/max.npy"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = checkout(tmp_path_factory.mktemp("train") / "featvis")
    config = write_config(root / "train.yaml", config_for(write_split_folder(root.parent / "colours")))
    dry = snakemake(root, config, "-n", *TARGETS)
    assert dry.returncode == 0, dry.stderr[-4000:]
    result = snakemake(root, config, *TARGETS)
    assert result.returncode == 0, result.stderr[-6000:]
    return root, planned_rules(dry)


def test_training_runs_on_train_and_val_folders(run):
    root, planned = run
    assert {"data", "train_model", "layer_table", "features_shard", "features_merge"} <= planned
    record = json.loads((root / "results/models/net/training.json").read_text())
    assert record["class_names"] == ["blue", "green", "red"] and record["head"] == "fc"
    assert (record["n_train"], record["n_val"]) == (9, 3) and 0 <= record["val_accuracy"] <= 1
    state = torch.load(root / "results/models/net/weights.pt", weights_only=True)
    assert state["fc.weight"].shape == (3, 512)  # one output per class, not ImageNet's 1000
    resolved = yaml.safe_load((root / "results/config.resolved.yaml").read_text())["models"]["net"]
    assert resolved["class_names"] == ["blue", "green", "red"] and resolved["num_classes"] == 3


def test_later_stages_read_the_trained_head(run):
    root, _ = run
    layers = (root / "results/models/net/layers.tsv").read_text().splitlines()
    assert any(line.startswith("fc\t") and "\t3\t" in f"{line}\t" for line in layers), layers
    assert np.load(root / "results/features/net/colours/fc/max.npy").shape == (12, 3)  # every image, 3 classes
    assert np.load(root / "results/features/net/colours/layer1/max.npy").shape == (12, 64)


def test_a_dataset_without_a_train_split_is_refused_at_start(tmp_path):
    root = checkout(tmp_path / "featvis")
    plain = tmp_path / "plain"
    write_split_folder(tmp_path / "split")
    (tmp_path / "split" / "train").rename(plain)  # classes directly under the folder: no split
    result = snakemake(root, write_config(root / "c.yaml", config_for(plain)), "-n")
    assert result.returncode == 1
    assert "featvis: models.net.train: dataset colours has no train split (its images' split: all)" in result.stderr
    assert "split: 0.2" in result.stderr and "rule " not in result.stdout + result.stderr  # no job planned
    held_out = snakemake(root, write_config(root / "c.yaml", config_for(plain, split=0.25)), "-n")
    assert held_out.returncode == 0 and "train_model" in planned_rules(held_out), held_out.stderr[-3000:]
