"""Receptive fields equal the support of the input gradient (tests/gradient_support.py) on the
MNIST CNN and EfficientNet-Lite0; the models people use: tests/test_receptive_zoo.py."""

from __future__ import annotations

import pytest
import torch

from featvis.vision.models import load_model
from featvis.vision.receptive import ReceptiveFields, receptive_fields
from gradient_support import box_mask, corner_centre_corner, gradient_supports

CASES = [
    ("mnist", ["conv1", "conv2", "conv3"], (1, 1, 28, 28)),
    ("efficientnet", ["_blocks.1", "_blocks.4"], (1, 3, 64, 64)),
]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    mnist = load_model({"architecture": "mnist_cnn", "allow_random": True}).module.double()
    effnet = load_model("efficientnet_lite0").module.double()
    return {"mnist": mnist, "efficientnet": effnet}


@pytest.mark.parametrize(("model", "layers", "shape"), CASES)
def test_field_is_gradient_support(models, model, layers, shape):
    module = models[model]
    traced = ReceptiveFields(module, shape, layers)
    probes = []
    for layer in layers:
        assert traced.kind(layer) == "exact"
        height, width = traced.grid_size(layer)
        probes += [(layer, y, x) for y, x in [*corner_centre_corner((height, width)), (1, width - 2)]]
    for probe, support in zip(probes, gradient_supports(module, shape, probes, samples=8)):
        assert torch.equal(support, box_mask(traced.box(*probe), shape[2:])), probe


def test_global_layer_has_no_field(models):
    assert receptive_fields(models["mnist"], (1, 1, 28, 28), ["fc"])["fc"] is None
