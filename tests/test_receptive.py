"""Receptive fields traced from the forward pass equal the support of the input gradient."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from featvis.vision.receptive import ReceptiveFields, receptive_fields


class Geometry(nn.Module):
    """Asymmetric padding, dilation, a strided residual branch and pooling in one net."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 2, 0))
        self.stem = nn.Conv2d(2, 4, 3, stride=2)
        self.dilated = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.branch = nn.Conv2d(4, 4, 1, stride=2)
        self.main = nn.Conv2d(4, 4, 5, stride=2, padding=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.tanh(self.stem(self.pad(x)))
        x = torch.tanh(self.dilated(x)) + x
        x = self.main(x) + self.branch(x)
        x = self.avg(self.pool(F.pad(x, (1, 0, 0, 0))))
        return self.head(x.mean(dim=(2, 3)))


LAYERS = ["pad", "stem", "dilated", "main", "branch", "pool", "avg"]


def gradient_box(model, layer, shape, y, x):
    """Bounding box of the input pixels that change the layer's output at (y, x)."""
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(out=o))
    image = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    model(image)
    handle.remove()
    (grad,) = torch.autograd.grad(store["out"][0, :, y, x].sum(), image)
    rows, cols = (grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    if len(rows) == 0:  # a position inside padding sees no input at all
        return None
    return rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1


def output_size(model, layer, shape):
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(o=o))
    model(torch.zeros(shape, dtype=next(model.parameters()).dtype))
    handle.remove()
    return store["o"].shape[-2:]


def same_box(box, reference):
    y0, y1, x0, x1 = box
    return (y1 <= y0 or x1 <= x0) if reference is None else box == reference


def smooth_copy(model):
    """Max pooling sends gradient to one winner only; an average pool over the same
    window has the same geometry and a gradient on every pixel of it."""
    model = copy.deepcopy(model)
    pool = model.pool
    model.pool = nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding, count_include_pad=True)
    return model


def test_fields_equal_gradient_support_on_hand_built_net():
    model = Geometry().double()
    with torch.no_grad():  # positive weights: no cancellation can hide a pixel from the gradient
        for p in model.parameters():
            p.abs_().add_(0.01)
    shape = (1, 2, 47, 53)
    fields = ReceptiveFields(model, shape, LAYERS)
    reference = smooth_copy(model)
    for layer in LAYERS:
        height, width = output_size(model, layer, shape)
        for y, x in [(0, 0), (height // 2, width // 3), (height - 1, width - 1)]:
            box = fields.box(layer, y, x)
            assert same_box(box, gradient_box(reference, layer, shape, y, x)), (layer, y, x)


def test_global_pooling_and_linear_are_global():
    fields = receptive_fields(Geometry(), (1, 2, 32, 32), ["head"])
    assert fields["head"] is None


# Real EfficientNet-Lite0 layers against the gradient support: tests/test_receptive_support.py.


def test_stem_padding_is_asymmetric(lite0):
    """Stride-2 'same' padding adds a pixel only on the right and bottom: no offset at 0."""
    field = receptive_fields(lite0.module, (1, 3, 64, 64), ["_conv_stem"])["_conv_stem"]
    assert field.lo == (0, 0) and field.size == (3, 3) and field.jump == (2, 2)


def test_layer_field_box_is_the_exact_box():
    model = Geometry()
    field = receptive_fields(model, (1, 2, 47, 53), ["branch"])["branch"]
    exact = ReceptiveFields(model, (1, 2, 47, 53), ["branch"])
    assert field.box(11, 12, 47, 53) == exact.box("branch", 11, 12) == (38, 45, 44, 51)
    with pytest.raises(ValueError, match="traced at"):
        field.box(0, 0, 64, 64)
