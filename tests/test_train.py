"""Training any architecture featvis loads: the seeded hold-out share, the classifier head found
and resized, fine-tuning from a weights file, and a deterministic run whose weights load back."""

from __future__ import annotations

import io
from collections import Counter, OrderedDict

import pytest
import torch
from torch import nn

from featvis.core.config import ConfigError
from featvis.core.device import make_deterministic
from featvis.vision.checkpoints import classifier_name, read_state_dict
from featvis.vision.checks import check_vision
from featvis.vision.data import folder_rows
from featvis.vision.models import ARCHITECTURES, Preprocess, load_model
from featvis.vision.train import (
    HeadError,
    StartWeightsError,
    check_outputs,
    fresh_head,
    holdout,
    load_start_weights,
    train_classifier,
    train_model,
    training_model,
)
from featvis.vision.train_checks import TrainingError
from test_train_checks import write_split_folder

# --- the seeded hold-out share ----------------------------------------------------------------


def test_holdout_keeps_the_share_per_class():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"] * 1 + ["d"] * 2
    splits = holdout(labels, 0.2, seed=0)
    held = Counter(label for label, split in zip(labels, splits) if split == "val")
    assert held == {"a": 2, "b": 1, "d": 1}  # round(0.2 * n), at least one, c's only image trains
    assert holdout(labels, 0.2, seed=0) == splits  # seeded
    assert holdout(labels, 0.2, seed=1) != splits
    assert Counter(holdout(["a"] * 4, 0.99, 0)) == {"val": 3, "train": 1}  # never the whole class


def test_holdout_of_a_class_ignores_the_other_classes():
    alone = holdout(["a"] * 10, 0.3, seed=5)
    mixed = holdout(["b", "a"] * 10, 0.3, seed=5)
    assert [s for label, s in zip(["b", "a"] * 10, mixed) if label == "a"] == alone


def test_holdout_share_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        holdout(["a", "b"], 0, 0)


# --- the classifier head ---------------------------------------------------------------------


def stand_in(architecture, **spec):
    return load_model({"architecture": architecture, "weights": "random", **spec}).module


@pytest.mark.parametrize(("architecture", "head"), [
    ("resnet18", "fc"), ("mnist_cnn", "fc"), ("timm:test_resnet", "fc"), ("timm:test_vit", "head"),
])
def test_fresh_head_sizes_the_output(architecture, head):
    loaded, name = training_model({"architecture": architecture, "image_size": 32}, 3, seed=0)
    assert name == head
    with torch.no_grad():
        assert loaded.module(torch.zeros(loaded.preprocess.input_shape(2))).shape == (2, 3)


def test_fresh_head_replaces_the_last_linear_of_a_sequential_classifier():
    module = nn.Sequential(OrderedDict(
        body=nn.Conv2d(3, 4, 3), pool=nn.AdaptiveAvgPool2d(1), flat=nn.Flatten(),
        classifier=nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1000, bias=False))))
    body = module.body.weight.clone()
    assert fresh_head(module, 5) == "classifier.2"
    assert module.classifier[2].out_features == 5 and module.classifier[2].bias is None
    assert module.classifier[0].out_features == 8 and torch.equal(module.body.weight, body)


def test_the_head_is_fresh_from_the_seed():
    def head(seed):
        torch.manual_seed(seed)
        module = stand_in("mnist_cnn")
        assert fresh_head(module, 10) == "fc"  # the right size already: replaced all the same
        return module.fc.weight

    assert torch.equal(head(3), head(3)) and not torch.equal(head(3), head(4))
    assert not torch.equal(head(3), stand_in("mnist_cnn").fc.weight)


def test_no_head_is_refused():
    convolutional = nn.Sequential(nn.Conv2d(3, 7, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    preprocess = Preprocess(32, (0.5,) * 3, (0.5,) * 3)
    assert fresh_head(convolutional, 3) is None
    with pytest.raises(HeadError, match="finds no classifier head .* have shape \\(1, 7\\), not 3 per image"):
        check_outputs(convolutional, preprocess, None, 3, "mine")
    check_outputs(convolutional, preprocess, None, 7, "mine")  # already the right size: trainable as it is
    projection = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 8), nn.Unflatten(1, (2, 4)))
    fresh_head(projection, 3)
    with pytest.raises(HeadError, match="resized '1' .* then have shape none: the forward pass fails"):
        check_outputs(projection, preprocess, "1", 3, "mine")
    tokens = nn.Sequential(nn.Flatten(2), nn.Linear(32 * 32, 8))  # per-channel scores: (1, 3, 8), not logits
    fresh_head(tokens, 3)
    with pytest.raises(HeadError, match="resized '1' .* have shape \\(1, 3, 3\\), so that layer is not"):
        check_outputs(tokens, preprocess, "1", 3, "mine")


@pytest.fixture
def headless(monkeypatch):
    """A registered architecture with no classifier: convolutions, pooled to 7 channels."""
    def build(spec):
        module = nn.Sequential(nn.Conv2d(3, 7, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return module, Preprocess(32, (0.5,) * 3, (0.5,) * 3), None

    monkeypatch.setitem(ARCHITECTURES, "headless", build)
    return "headless"


def test_a_model_without_a_head_is_refused_when_its_structure_is_probed(headless, tmp_path):
    config = {"datasets": {}, "analyses": [], "models": {"net": {
        "architecture": headless, "class_names": ["a", "b", "c"], "num_classes": 3, "train": {"dataset": "d"}}}}
    with pytest.raises(ConfigError, match="models.net: featvis cannot train architecture headless: it finds no "
                                          "classifier head"):
        check_vision(config, tmp_path)


def test_find_head_names_timm_and_torchvision_heads():
    assert classifier_name(stand_in("timm:test_vit")) == "head"
    assert classifier_name(stand_in("squeezenet1_1")) is None  # its classifier is a convolution


# --- fine-tuning from a weights file -----------------------------------------------------------


def saved(state, tmp_path, name="start.pt", wrap=None):
    path = tmp_path / name
    torch.save({wrap: state} if wrap else state, path)
    return path


def test_start_weights_load_all_but_a_head_of_another_size(tmp_path):
    pretrained = stand_in("resnet18", image_size=32)
    with torch.no_grad():
        pretrained.conv1.weight.add_(1.0)  # not what the stand-in starts from
    path = saved(pretrained.state_dict(), tmp_path, wrap="state_dict")
    loaded, head = training_model({"architecture": "resnet18", "image_size": 32}, 3, seed=0)
    record = load_start_weights(loaded.module, path, head)
    assert torch.equal(loaded.module.conv1.weight, pretrained.conv1.weight)
    assert loaded.module.fc.weight.shape == (3, 512)
    assert record["skipped_head_keys"] == ["fc.bias", "fc.weight"]
    assert record["loaded_keys"] == len(pretrained.state_dict()) - 2


def test_start_weights_of_another_architecture_are_refused(tmp_path):
    path = saved(stand_in("mnist_cnn").state_dict(), tmp_path)
    loaded, head = training_model({"architecture": "resnet18", "image_size": 32}, 3, seed=0)
    with pytest.raises(StartWeightsError, match="does not fit this architecture: .* keys are missing"):
        load_start_weights(loaded.module, path, head)


def test_read_state_dict_unwraps_and_drops_the_dataparallel_prefix(tmp_path):
    state = {"module.fc.weight": torch.ones(2, 2)}
    assert list(read_state_dict(saved(state, tmp_path, wrap="model"), "train")) == ["fc.weight"]


# --- a whole run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    rows = folder_rows(write_split_folder(tmp_path_factory.mktemp("train") / "colours"))
    return rows.assign(sha1="")


SPEC = {"architecture": "resnet18", "image_size": 32,
        "train": {"dataset": "colours", "epochs": 1, "batch_size": 4, "learning_rate": 0.01, "workers": 0}}


def trained(spec, manifest):
    make_deterministic(0, 1)
    module, record = train_model(spec, manifest, seed=0)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return module, record, buffer.getvalue()


def test_training_is_deterministic_and_its_weights_load_back(manifest):
    module, record, weights = trained(SPEC, manifest)
    assert trained(SPEC, manifest)[2] == weights  # same bytes at the same threads
    loader = {**SPEC, "train": {**SPEC["train"], "workers": 1}}
    assert trained(loader, manifest)[2] == weights  # and whoever decodes the images
    assert record["class_names"] == ["blue", "green", "red"] and record["head"] == "fc"
    assert (record["n_train"], record["n_val"]) == (9, 3)
    assert 0 <= record["train_accuracy"] <= 1 and 0 <= record["val_accuracy"] <= 1
    assert len(record["loss"]) == 1 and record["start"] == {"weights": "random"}
    fresh, _ = training_model(SPEC, 3, seed=1)  # what load_model(num_classes=3) builds, other weights
    fresh.module.load_state_dict(torch.load(io.BytesIO(weights), weights_only=True))  # strict
    for key, value in module.state_dict().items():
        assert torch.equal(fresh.module.state_dict()[key], value)


def test_a_held_out_share_trains_a_timm_model(manifest):
    plain = manifest.assign(split="all")
    spec = {**SPEC, "architecture": "timm:test_resnet", "train": {**SPEC["train"], "split": 0.25}}
    _, record, _ = trained(spec, plain)
    assert (record["n_train"], record["n_val"]) == (9, 3)  # one of each class's four images held out
    assert record["split"] == 0.25


def test_a_manifest_without_a_train_split_is_refused_in_the_job_too(manifest):
    with pytest.raises(TrainingError, match="dataset colours has no train split"):
        train_model(SPEC, manifest.assign(split="all"), seed=0)


def colour_reader():
    """Scores = mean R, G, B: it calls a red image class 0, green 1, blue 2 (a learning rate of 0 keeps it so)."""
    module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
    with torch.no_grad():
        module[2].weight.copy_(torch.eye(3))
        module[2].bias.zero_()
    return module


@pytest.mark.parametrize(("names", "val_accuracy"), [
    (["red", "green", "blue"], 1.0),  # output i is class_names[i]
    (["blue", "green", "red"], 1 / 3),  # the sorted order: only green sits where the reader puts it
])
def test_class_names_set_the_label_indices(manifest, names, val_accuracy):
    settings = {**SPEC["train"], "learning_rate": 1e-30}
    preprocess = Preprocess(32, (0.5,) * 3, (0.5,) * 3)
    metrics = train_classifier(colour_reader(), manifest, preprocess, names, settings, seed=0)
    assert metrics["val_accuracy"] == pytest.approx(val_accuracy)
    assert metrics["train_accuracy"] == pytest.approx(val_accuracy)
