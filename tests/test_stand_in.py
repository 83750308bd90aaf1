"""`weights: random`: the configured architecture with seeded random weights (for testing the
workflow only), and the start check that lists every missing weights file in one message."""

from __future__ import annotations

import pytest
import torch
import torchvision

from featvis.core.config import ConfigError
from featvis.vision.checks import check_vision
from featvis.vision.models import load_model


@pytest.mark.parametrize("arch", ["alexnet", "inceptionv1", "efficientnet_lite0", "mnist_cnn"])
def test_stand_in_is_the_architecture_with_the_same_random_weights_every_time(arch, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache: nothing is looked up
    first = load_model({"architecture": arch, "weights": "random"})
    torch.manual_seed(123)  # the global generator does not matter ...
    second = load_model({"architecture": arch, "weights": "random"})
    assert first.weights is None
    a, b = first.module.state_dict(), second.module.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = torch.random.get_rng_state()
    load_model({"architecture": arch, "weights": "random"})
    assert torch.equal(torch.random.get_rng_state(), state)  # ... and is left as it was


def test_stand_in_matches_torchvision_structure():
    stand_in = load_model({"architecture": "vgg16", "weights": "random"}).module
    reference = torchvision.models.vgg16(weights=None)
    assert [(k, v.shape) for k, v in stand_in.state_dict().items()] == \
        [(k, v.shape) for k, v in reference.state_dict().items()]


def test_saved_module_cannot_stand_in():
    with pytest.raises(FileNotFoundError, match="no architecture of its own"):
        load_model({"architecture": "module", "weights": "random", "image_size": 32})


def vision_config(models):
    return {"datasets": {}, "models": models, "analyses": []}


def test_every_missing_weights_file_in_one_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    models = {
        "alexnet": {"architecture": "alexnet"},
        "inceptionv1": {"architecture": "inceptionv1"},
        "mine": {"architecture": "resnet18", "weights": str(tmp_path / "elsewhere" / "r18.pth")},
        "ok": {"architecture": "alexnet", "weights": "random"},
    }
    with pytest.raises(ConfigError) as error:
        check_vision(vision_config(models), tmp_path / "cache")
    message = str(error.value)
    hub = str(tmp_path / "torch" / "hub" / "checkpoints")
    assert message.startswith("3 models cannot be loaded")
    assert f"models.alexnet (alexnet): weights file 'alexnet-owt-7be5be79.pth' not found in {hub}" in message
    assert f"'inception5h.pth' not found in {hub}" in message and "set models.inceptionv1.weights" in message
    assert f"'r18.pth' not found in {tmp_path / 'elsewhere'}" in message and "models.mine.weights" in message
    assert "models.ok" not in message and "Weights files" in message


def test_one_missing_file_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match=r"^models.v \(vgg16\): weights file 'vgg16-397923af.pth' not found"):
        check_vision(vision_config({"v": {"architecture": "vgg16"}}), tmp_path / "cache")


def test_stand_ins_pass_the_start_check(tmp_path):
    models = {"i": {"architecture": "inceptionv1", "weights": "random"}}
    structures = check_vision(vision_config(models), tmp_path / "cache")
    assert structures["i"]["shapes"]["mixed4a"] == [508, 14, 14] and structures["i"]["weights"] is None
