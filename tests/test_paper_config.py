"""config/paper.yaml: without the weights it stops at start listing every missing file; with
`weights: random` stand-ins of exactly its architectures, at tiny sizes, every rule it plans runs
and every target it asks for is written."""

from __future__ import annotations

import copy
import re

import pytest

from featvis.core.config import load_yaml
from workflow_helpers import ROOT, checkout, planned_rules, run, snakemake, write_config

pytestmark = pytest.mark.integration

PAPER = load_yaml(ROOT / "config" / "paper.yaml")
WEIGHTS_FILES = {"alexnet": "alexnet-owt-7be5be79.pth", "inceptionv1": "inception5h.pth",
                 "resnet50": "resnet50-11ad3fa6.pth", "vgg16": "vgg16-397923af.pth"}


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty hub cache
    return checkout(tmp_path / "featvis")


def test_without_weights_one_message_lists_every_missing_file(root, tmp_path):
    result = run(root, "-n", "--configfile", "config/paper.yaml")  # as the README says, literally
    assert result.returncode != 0
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    lines = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert f"featvis: {len(WEIGHTS_FILES)} models cannot be loaded" in result.stderr
    assert len(lines) == len(WEIGHTS_FILES)
    for (model, file), line in zip(sorted(WEIGHTS_FILES.items()), lines, strict=True):
        assert f"models.{model} ({model}): weights file '{file}' not found in {hub}" in line
        assert f"set models.{model}.weights" in line
    assert "Traceback" not in result.stderr
    assert not (root / "results" / "data").exists() and not (root / "logs").exists()  # no job ran


def stand_in_config() -> dict:
    """The paper config with random-weight stand-ins, a dozen small crops and a few steps."""
    config = copy.deepcopy(PAPER)
    config["threads"] = 1
    for name, spec in config["models"].items():
        spec["weights"] = "random"
        if name != "inceptionv1":  # its final 7x7 pool needs 224 px; renders set their own size
            spec["image_size"] = 64
    config["datasets"]["photos"].update(n_crops=12, crop_px=48)
    config["features"]["batch_size"] = 12
    config["patches"].update(k=3, grid_channels=4)
    config["neighbors"].update(k=2, n_queries=2)
    config["embed"]["perplexity"] = 3
    config["figures"]["dpi"] = 40
    render = config["render"]
    render["defaults"].update(size=48, input_size=64)
    jobs = [*render["jobs"].values(), *(job for kind in render["figures"].values() for job in kind.values())]
    for job in jobs:
        job.update(steps=2, snapshots=[1, 2])
    render["jobs"]["mixed4a_97_diversity"]["copies"] = 2
    render["figures"]["interpolation"]["mixed4a_476_to_460"]["frames"] = 3
    return config


def summary_files(root, config) -> list[str]:
    """Every file the workflow makes, as Snakemake itself lists them."""
    result = snakemake(root, config, "--summary")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    return [row[0] for row in rows[1:] if row and row[0].startswith("results/")]


def test_stand_ins_run_every_figure_at_tiny_sizes(root):
    config = write_config(root / "stand_in.yaml", stand_in_config())
    result = snakemake(root, config)
    assert result.returncode == 0, result.stderr[-5000:]
    rules = planned_rules(result)
    assert {"data", "features_shard", "features_merge", "filters", "patches_figures", "neighbors",
            "embed_method", "embed_figures", "render_layer", "render_figure", "all"} <= rules
    assert not rules & {"attribution_deconv", "attribution_cam", "train_model", "attention_compute"}
    log = result.stdout + result.stderr
    assert len(re.findall(r"^(?:local)?rule filters:", log, flags=re.M)) == 4  # conv1 of every model, AlexNet's too

    files = summary_files(root, config)
    assert len(files) > 30
    for name in files:
        path = root / name
        assert path.exists(), name
        assert (any(path.iterdir()) if path.is_dir() else path.stat().st_size > 0), name
    made = set(files)
    for name in ("results/weights/alexnet/filters.png", "results/embed/resnet50/photos/avgpool/scatter_tsne.png",
                 "results/neighbors/resnet50/photos/avgpool/l2.png"):
        assert name in made
    renders = {p for p in made if "render" in p}
    for job in (*PAPER["render"]["jobs"], *PAPER["render"]["figures"]["interpolation"]):
        assert any(job in p for p in renders), job
    assert any("features.14" in p and "patches" in p for p in made)  # VGG16 conv3_3 top-K
