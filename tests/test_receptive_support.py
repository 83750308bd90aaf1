"""Receptive fields equal the support of the input gradient of one output position.

Max-pooling and ReLUs route gradients to a subset of the field for any one input, so
the support is the union over a batch of random inputs; with enough of them every
pixel of the field is reached, and none outside it can ever be.
"""

from __future__ import annotations

import pytest
import torch

from featvis.core.hooks import get_layer
from featvis.vision.models import load_model
from featvis.vision.receptive import receptive_fields


def gradient_support(module, layer, shape, y, x, batch=24, seed=0):
    torch.manual_seed(seed)
    inputs = torch.randn(batch, *shape[1:], dtype=torch.float64, requires_grad=True)
    out = {}
    handle = get_layer(module, layer).register_forward_hook(lambda m, i, o: out.__setitem__("a", o))
    try:
        module(inputs)
    finally:
        handle.remove()
    weights = torch.randn(out["a"].shape[1], dtype=torch.float64)  # random channel mix: no cancellation by symmetry
    (out["a"][:, :, y, x] * weights).sum().backward()
    return inputs.grad.abs().sum(dim=(0, 1)) > 0, tuple(out["a"].shape[2:])


def box_mask(box, size):
    y0, y1, x0, x1 = box
    mask = torch.zeros(size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


CASES = [
    ("mnist", "conv1", (1, 1, 28, 28)),
    ("mnist", "conv2", (1, 1, 28, 28)),
    ("mnist", "conv3", (1, 1, 28, 28)),
    ("efficientnet", "_blocks.1", (1, 3, 64, 64)),
    ("efficientnet", "_blocks.4", (1, 3, 64, 64)),
]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    mnist = load_model({"architecture": "mnist_cnn", "allow_random": True}).module.double()
    effnet = load_model("efficientnet_lite0").module.double()
    return {"mnist": mnist, "efficientnet": effnet}


@pytest.mark.parametrize(("model", "layer", "shape"), CASES)
def test_field_is_gradient_support(models, model, layer, shape):
    module = models[model]
    field = receptive_fields(module, shape, [layer])[layer]
    assert field is not None
    _, grid = gradient_support(module, layer, shape, 0, 0, batch=1)
    positions = {(0, 0), (grid[0] // 2, grid[1] // 2), (grid[0] - 1, grid[1] - 1), (1, grid[1] - 2)}
    for y, x in positions:
        support, _ = gradient_support(module, layer, shape, y, x)
        expected = box_mask(field.box(y, x, shape[2], shape[3]), shape[2:])
        assert torch.equal(support, expected), (layer, y, x, field)


def test_global_layer_has_no_field(models):
    assert receptive_fields(models["mnist"], (1, 1, 28, 28), ["fc"])["fc"] is None
