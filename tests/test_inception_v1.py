"""InceptionV1 as Lucid defines it: torch-lucent's model, module for module (known answer: the
same random weights give identical outputs on every named layer), its weights file from the hub
cache or a path, and its input range."""

from __future__ import annotations

import pytest
import torch
from lucent.modelzoo import inceptionv1 as lucent_inceptionv1
from lucent.optvis.transform import preprocess_inceptionv1

from featvis.core.hooks import capture
from featvis.vision.models import MissingWeightsError, load_model
from featvis.vision.zoo.inception_v1 import WEIGHTS_URL, InceptionV1


@pytest.fixture(scope="module")
def lucent_model():
    torch.manual_seed(1)
    model = lucent_inceptionv1(pretrained=False).eval()
    with torch.no_grad():  # lucent's default init leaves biases small; spread them so every ReLU matters
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def weights_file(lucent_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("hub") / "inception5h.pth"
    torch.save(lucent_model.state_dict(), path)
    return path


def all_outputs(model, x):
    names = [n for n, _ in model.named_modules() if n]
    with torch.no_grad(), capture(model, names) as acts:
        model(x)
    return {n: acts[n] for n in names}


def test_state_dict_keys_and_shapes_are_lucents(lucent_model):
    ours = {k: v.shape for k, v in InceptionV1().state_dict().items()}
    assert ours == {k: v.shape for k, v in lucent_model.state_dict().items()}
    assert len(ours) == 116 and "mixed4a_pool_reduce_pre_relu_conv.weight" in ours
    assert WEIGHTS_URL.endswith("/inception5h.pth")  # the file name torch.hub caches lucent's download under


def test_same_weights_identical_outputs_on_every_named_layer(lucent_model, weights_file):
    ours = load_model({"architecture": "inceptionv1", "weights": str(weights_file)}).module
    assert {n for n, _ in ours.named_modules()} == {n for n, _ in lucent_model.named_modules()}
    x = preprocess_inceptionv1()(torch.rand(2, 3, 224, 224))
    expected, got = all_outputs(lucent_model, x), all_outputs(ours, x)
    assert set(expected) == set(got) and len(got) == 138  # 57 convs, 57 ReLUs, 13 pools, 9 blocks, fc, softmax
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert got["mixed4a"].shape == (2, 508, 14, 14) and got["mixed5b"].shape == (2, 1024, 7, 7)
    assert got["mixed4a"].std() > 0 and got["softmax2"].shape == (2, 1008)


def test_input_gradient_matches_lucent_with_plain_relus(weights_file):
    """Our ReLUs are plain nn.ReLU, i.e. lucent with redirected_ReLU=False: same gradients too."""
    reference = lucent_inceptionv1(pretrained=False, redirected_ReLU=False).eval()
    reference.load_state_dict(torch.load(weights_file, weights_only=True))
    ours = load_model({"architecture": "inceptionv1", "weights": str(weights_file)}).module
    grads = []
    for model in (reference, ours):
        x = preprocess_inceptionv1()(torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0)))
        x.requires_grad_(True)
        acts = []
        handle = dict(model.named_modules())["mixed4a"].register_forward_hook(lambda m, i, o, acts=acts: acts.append(o))
        try:
            model(x)
        except RuntimeError:  # the 7x7 average pool needs 224 px; mixed4a has run by then
            pass
        handle.remove()
        (acts[0] ** 2).mean().backward()  # every channel: with random weights one alone may be dead
        grads.append(x.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-6)


def test_preprocess_is_lucids_input_range():
    loaded = load_model({"architecture": "inceptionv1", "weights": "random"})
    loaded.module.to(torch.float64).float()  # an ordinary module: .to() and friends work
    pre = loaded.preprocess
    x = torch.rand(2, 3, 8, 8)
    mean, std = torch.tensor(pre.mean).view(1, 3, 1, 1), torch.tensor(pre.std).view(1, 3, 1, 1)
    torch.testing.assert_close((x - mean) / std, preprocess_inceptionv1()(x), rtol=0, atol=1e-4)
    assert pre.image_size == 224 and pre.channels == 3 and pre.class_names == ()


def test_weights_from_the_hub_cache(weights_file, tmp_path, monkeypatch):
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "inception5h.pth").write_bytes(weights_file.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    loaded = load_model("inceptionv1")
    assert loaded.weights == str(cache / "inception5h.pth")
    expected = torch.load(weights_file, weights_only=True)
    assert all(torch.equal(v, expected[k]) for k, v in loaded.module.state_dict().items())


def test_missing_weights_name_the_file_and_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as error:
        load_model("inceptionv1")
    assert error.value.file == "inception5h.pth"
    assert error.value.looked_in == (str(tmp_path / "hub" / "checkpoints"),)
    assert "inception5h.pth" in str(error.value) and "weights:" in str(error.value)
