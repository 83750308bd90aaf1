"""Bad input to the workflow: caught at start where it can be, with a message on the console
that names the key, file or layer; what fails inside a job shows its cause on the console too
and costs no earlier output."""

from __future__ import annotations

import copy

import pytest

from workflow_helpers import TINY_CONFIG, checkout, snakemake, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def root(tmp_path):
    return checkout(tmp_path / "featvis")


def dry_run(root, config):
    result = snakemake(root, write_config(root / "c.yaml", config), "-n")
    return result.returncode, result.stdout + result.stderr


def small_config(**changes):
    config = copy.deepcopy(TINY_CONFIG)
    config.update(changes)
    return config


def folder_config(folder, on_error="raise", layers=("_blocks.1",)):
    return {
        "threads": 1,
        "datasets": {"mine": {"source": "folder", "path": str(folder), "on_error": on_error}},
        "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
        "analyses": [{"model": "lite", "dataset": "mine", "layers": list(layers)}],
    }


def test_invalid_value_names_the_key(root):
    code, out = dry_run(root, small_config(features={"batch_size": 0}))
    assert code != 0 and "features.batch_size: 0 is less than the minimum of 1" in out


def test_wrong_type_names_key_and_expected_type(root):
    code, out = dry_run(root, small_config(features={"batch_size": "eight"}))
    assert code != 0 and "features.batch_size: expected an integer, got 'eight' (a string)" in out


def test_unknown_key_gets_did_you_mean(root):
    code, out = dry_run(root, small_config(featurs={}))
    assert code != 0 and "featurs: unknown key; did you mean 'features'" in out
    code, out = dry_run(root, small_config(render={"defaults": {"step": 8}}))
    assert code != 0 and "render.defaults.step: unknown key; did you mean 'steps'" in out


def test_analysis_naming_unknown_model(root):
    code, out = dry_run(root, small_config(analyses=[{"model": "vgg", "dataset": "photos", "layers": ["x"]}]))
    assert code != 0 and "analyses[0].model: 'vgg' is not in models" in out


def test_missing_folder_is_caught_at_start(root, tmp_path):
    code, out = dry_run(root, folder_config(tmp_path / "no_such_folder"))
    assert code != 0 and "datasets.mine.path: image folder" in out and "no_such_folder" in out


def test_unknown_architecture_suggests_closest(root, image_folder):
    config = folder_config(image_folder)
    config["models"]["lite"]["architecture"] = "efficientnet_lite"
    code, out = dry_run(root, config)
    assert code != 0 and "unknown model architecture 'efficientnet_lite' (closest: efficientnet_lite0" in out
    assert "alexnet" not in out


def test_missing_weights_named_at_start(root, image_folder):
    config = folder_config(image_folder)
    config["models"] = {"lite": {"architecture": "resnet18", "weights": "/nowhere/resnet18.pth"}}
    result = snakemake(root, write_config(root / "c.yaml", config))  # a real run, stopped before any job
    assert result.returncode != 0 and "resnet18.pth" in result.stderr and "/nowhere" in result.stderr
    assert not (root / "results/data").exists() and not (root / "logs").exists()


def test_checkpoint_problems_stop_a_real_run_at_start(root, image_folder):
    """A truncated file, another head size and a class pickled from a script: one line each on the
    console, before any job, with no traceback."""
    import subprocess
    import sys

    import torch

    from featvis.vision.models import MnistCNN

    torch.save(MnistCNN(num_classes=5).state_dict(), root / "five.pt")
    (root / "cut.pt").write_bytes((root / "five.pt").read_bytes()[:500])
    (root / "net.py").write_text("import torch\nclass Net(torch.nn.Conv2d):\n    pass\n"
                                 "torch.save(Net(3, 4, 3), 'net.pt')\n")
    subprocess.run([sys.executable, "net.py"], cwd=root, check=True)
    config = folder_config(image_folder)
    config["models"] = {"cut": {"architecture": "mnist_cnn", "weights": "cut.pt"},
                        "head": {"architecture": "mnist_cnn", "weights": "five.pt", "num_classes": 10},
                        "script": {"architecture": "module", "weights": "net.pt", "image_size": 16}}
    config["analyses"] = []
    result = snakemake(root, write_config(root / "c.yaml", config))
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "featvis: 3 models cannot be loaded:" in result.stderr
    assert "models.cut: mnist_cnn: cut.pt (500 bytes) cannot be read: it is truncated" in result.stderr
    assert "models.head: mnist_cnn: the classifier head 'fc' in five.pt has 5 outputs" in result.stderr
    assert "set `num_classes: 5`" in result.stderr
    assert "models.script: module: net.pt is a whole model pickled from a script: its class 'Net'" in result.stderr
    assert not (root / "results/data").exists() and not (root / "logs").exists()


def test_unknown_layer_names_closest_first(root, image_folder):
    code, out = dry_run(root, folder_config(image_folder, layers=("_block.10",)))
    assert code != 0
    assert "analyses[0].layers: unknown layer '_block.10' (closest: _blocks.10, _blocks.1" in out
    assert "_conv_head" not in out  # not a list of every module


def test_class_token_of_a_convolutional_layer_at_start(root, image_folder):
    code, out = dry_run(root, folder_config(image_folder, layers=("_blocks.1", "_blocks.1@cls")))
    assert code != 0
    assert ("analyses[0].layers: layer '_blocks.1@cls': '_blocks.1' is not a token layer (an output of (batch, "
            "tokens, channels) over a patch grid), so it has no @cls token; use '_blocks.1' itself") in out


def test_render_channel_out_of_range_at_start(root, image_folder):
    config = folder_config(image_folder)
    config["render"] = {"jobs": {"x": {"model": "lite", "layer": "_blocks.1", "channels": [3, 99]}}}
    code, out = dry_run(root, config)
    assert code != 0 and "render.jobs.x.channels: channel 99 is out of range for layer '_blocks.1'" in out
    assert "which has 24 channels" in out


def test_render_objective_checked_at_start(root, image_folder):
    config = folder_config(image_folder)
    objectives = {"mix": {"sum": [{"channel": {"channel": 1}}, {"weight": -1, "neuron": {"channel": 40}}]}}
    config["render"] = {"jobs": {"x": {"model": "lite", "layer": "_blocks.1", "objectives": objectives}}}
    code, out = dry_run(root, config)
    assert code != 0 and "render.jobs.x.objectives.mix.neuron: channel 40 is out of range" in out


def test_corrupt_image_stops_the_run_naming_the_file_on_the_console(root, image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    config = write_config(root / "c.yaml", folder_config(image_folder))
    result = snakemake(root, config, "results/data/mine/manifest.csv")
    assert result.returncode != 0
    assert "CorruptImageError" in result.stdout + result.stderr and "broken.png" in result.stdout + result.stderr
    assert not (root / "results/data/mine/manifest.csv").exists()


def test_corrupt_image_skipped_when_configured(root, image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    config = write_config(root / "c.yaml", folder_config(image_folder, on_error="skip"))
    result = snakemake(root, config, "results/data/mine/manifest.csv")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "broken.png" in (root / "results/data/mine/skipped.csv").read_text()
    assert "broken.png" not in (root / "results/data/mine/manifest.csv").read_text()
    assert "skipping" in (root / "logs/data/mine.log").read_text()


def test_failed_job_keeps_earlier_outputs(root, image_folder):
    config = folder_config(image_folder)
    config["attribution"] = {"images": [999]}  # only the class-map job can see this is out of range
    path = write_config(root / "c.yaml", config)
    result = snakemake(root, path, "--keep-going")
    assert result.returncode != 0 and "999" in result.stdout + result.stderr  # the cause, on the console
    kept = [root / "results/data/mine/manifest.csv", root / "results/features/lite/mine/_blocks.1/max.npy"]
    assert all(p.exists() for p in kept)
    stamps = [p.stat().st_mtime_ns for p in kept]
    config["attribution"] = {"images": [0]}
    result = snakemake(root, write_config(path, config))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert [p.stat().st_mtime_ns for p in kept] == stamps  # nothing recomputed


def test_featured_gallery_unit_out_of_range(root):
    code, out = dry_run(root, small_config(gallery={"featured": ["efficientnet_lite0/_blocks.4/4000"]}))
    assert code != 0
    assert "gallery.featured[0] (efficientnet_lite0/_blocks.4/4000): channel 4000 is out of range" in out
    assert "valid: 0..39" in out and "Traceback" not in out
    code, out = dry_run(root, small_config(gallery={"featured": ["efficientnet_lite0/_blocks.5/1"]}))
    assert code != 0 and "layer '_blocks.5' has no gallery pages; did you mean '_blocks.4'" in out
    code, out = dry_run(root, small_config(gallery={"featured": ["lite0/_blocks.4"]}))
    assert code != 0 and "gallery.featured[0]: 'lite0/_blocks.4' does not match" in out
