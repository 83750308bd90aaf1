"""Models by name: real ImageNet weights offline, torchvision from a file, clear errors."""

from __future__ import annotations

import pytest
import torch
import torchvision
from skimage import data as skdata

from featvis.vision.data import to_tensor
from featvis.vision.models import MissingWeightsError, UnknownModelError, load_model


def classify(model, image):
    from PIL import Image

    size = model.preprocess.image_size
    picture = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    import numpy as np

    with torch.no_grad():
        probs = model.module(to_tensor([np.asarray(picture)], model.preprocess)).softmax(-1)[0]
    return model.preprocess.class_names[int(probs.argmax())], float(probs.max())


def test_efficientnet_lite0_recognises_bundled_photos(lite0):
    name, _ = classify(lite0, skdata.chelsea())
    assert name in {"Egyptian cat", "tabby", "tiger cat"}
    name, prob = classify(lite0, skdata.coffee())
    assert name == "espresso" and prob > 0.5


def test_preprocessing_travels_with_the_model(lite0):
    p = lite0.preprocess
    assert p.image_size == 224 and p.channels == 3 and len(p.class_names) == 1000
    assert load_model({"architecture": "efficientnet_lite0", "image_size": 160}).preprocess.image_size == 160


def test_unknown_model_suggests_closest_names_first():
    with pytest.raises(UnknownModelError, match=r"'efficientnet_lite' \(closest: efficientnet_lite0, ") as caught:
        load_model("efficientnet_lite")
    assert "alexnet" not in str(caught.value)  # not the whole registry


def test_missing_torchvision_weights_name_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as error:
        load_model("alexnet")
    message = str(error.value)
    assert "alexnet-owt-7be5be79.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_missing_explicit_weights_file_is_named(tmp_path):
    with pytest.raises(MissingWeightsError, match="resnet18.pth.*not found; looked in: " + str(tmp_path)):
        load_model({"architecture": "resnet18", "weights": str(tmp_path / "resnet18.pth")})


def test_torchvision_weights_from_path_and_from_hub_cache(tmp_path, monkeypatch):
    reference = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "mine.pth"
    torch.save(reference.state_dict(), path)
    x = torch.randn(1, 3, 64, 64)
    from_path = load_model({"architecture": "resnet18", "weights": str(path)})
    torch.testing.assert_close(from_path.module(x), reference(x))

    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "resnet18-f37072fd.pth").write_bytes(path.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from_cache = load_model("resnet18")
    torch.testing.assert_close(from_cache.module(x), reference(x))
    assert from_cache.preprocess.image_size == 224 and from_cache.preprocess.class_names[0] == "tench"


def test_googlenet_drops_training_heads(tmp_path):
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    torch.save(model.state_dict(), tmp_path / "g.pth")
    loaded = load_model({"architecture": "googlenet", "weights": str(tmp_path / "g.pth")})
    assert loaded.module.aux1 is None and loaded.module(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_saved_whole_module(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten())
    torch.save(module, tmp_path / "whole.pt")
    loaded = load_model({"architecture": "module", "weights": str(tmp_path / "whole.pt"), "image_size": 16})
    assert loaded.preprocess.image_size == 16 and isinstance(loaded.module[0], torch.nn.Conv2d)
    with pytest.raises(ValueError, match="image_size"):
        load_model({"architecture": "module", "weights": str(tmp_path / "whole.pt")})


def test_mnist_cnn_needs_weights():
    with pytest.raises(MissingWeightsError, match="train it"):
        load_model("mnist_cnn")
