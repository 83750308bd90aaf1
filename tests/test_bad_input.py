"""Bad input to the workflow: a clear message, naming the key, file or layer."""

from __future__ import annotations

import copy

import pytest

from workflow_helpers import TINY_CONFIG, snakemake, write_config

pytestmark = pytest.mark.integration


def small_config(**changes):
    config = copy.deepcopy(TINY_CONFIG)
    config.update(changes)
    return config


def test_invalid_config_names_the_key(tmp_path):
    config = small_config(features={"batch_size": 0})
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "-n")
    assert result.returncode != 0
    assert "batch_size" in (result.stdout + result.stderr) and "minimum" in (result.stdout + result.stderr)


def test_unknown_key_is_rejected(tmp_path):
    config = small_config(featurs={})
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "-n")
    assert result.returncode != 0 and "featurs" in (result.stdout + result.stderr)


def test_analysis_naming_unknown_model(tmp_path):
    config = small_config(analyses=[{"model": "vgg", "dataset": "photos", "layers": ["x"]}])
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config), "-n")
    assert result.returncode != 0 and "analyses[0].model: 'vgg' is not in models" in (result.stdout + result.stderr)


def folder_config(folder, on_error="raise", layers=("conv1",)):
    return {
        "threads": 1,
        "datasets": {"mine": {"source": "folder", "path": str(folder), "on_error": on_error}},
        "models": {"cnn": {"architecture": "resnet18", "weights": "/nowhere/resnet18.pth"}},
        "analyses": [{"model": "cnn", "dataset": "mine", "layers": list(layers)}],
    }


def test_corrupt_image_stops_the_run_naming_the_file(tmp_path, image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    config = write_config(tmp_path / "c.yaml", folder_config(image_folder))
    result = snakemake(tmp_path, config, "results/data/mine/manifest.csv")
    assert result.returncode != 0
    log = (tmp_path / "logs/data/mine.log").read_text()
    assert "CorruptImageError" in log and "broken.png" in log
    assert not (tmp_path / "results/data/mine/manifest.csv").exists()


def test_corrupt_image_skipped_when_configured(tmp_path, image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    config = write_config(tmp_path / "c.yaml", folder_config(image_folder, on_error="skip"))
    result = snakemake(tmp_path, config, "results/data/mine/manifest.csv")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "broken.png" in (tmp_path / "results/data/mine/skipped.csv").read_text()
    assert "broken.png" not in (tmp_path / "results/data/mine/manifest.csv").read_text()
    assert "skipping" in (tmp_path / "logs/data/mine.log").read_text()


def test_missing_weights_named_in_the_log(tmp_path, image_folder):
    config = write_config(tmp_path / "c.yaml", folder_config(image_folder))
    result = snakemake(tmp_path, config, "results/models/cnn/layers.tsv")
    assert result.returncode != 0
    log = (tmp_path / "logs/layers/cnn.log").read_text()
    assert "resnet18.pth" in log and "/nowhere" in log


def test_unknown_layer_lists_valid_layers(tmp_path, image_folder):
    config = folder_config(image_folder, layers=("conv9",))
    config["models"] = {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}}
    config["analyses"][0]["model"] = "lite"
    result = snakemake(tmp_path, write_config(tmp_path / "c.yaml", config))
    assert result.returncode != 0
    log = (tmp_path / "logs/features/lite/mine/shard0.log").read_text()
    assert "unknown layer 'conv9'" in log and "_blocks.10" in log
