"""DeconvNet / guided backprop rules, CAM vs Grad-CAM, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from featvis.vision.attribution import AttributionError, class_activation_map, grad_cam, project


def two_by_one(a: float, b: float) -> nn.Sequential:
    """x -> conv1x1(a) -> ReLU -> conv1x1(b): known answers for each backward rule."""
    model = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.ReLU(), nn.Conv2d(1, 1, 1, bias=False)).eval()
    with torch.no_grad():
        model[0].weight.fill_(a)
        model[2].weight.fill_(b)
    return model


@pytest.mark.parametrize(
    ("b", "pixel", "deconv", "guided"),
    [(2.0, -1.0, 6.0, 0.0),  # ReLU off: DeconvNet ignores the forward mask, guided keeps it
     (2.0, 1.0, 6.0, 6.0),
     (-2.0, 1.0, 0.0, 0.0)],  # negative signal is rectified by both
)
def test_rectifier_rules_known_answers(b, pixel, deconv, guided):
    model = two_by_one(3.0, b)
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 1, 2] = pixel
    for method, expected in (("deconvnet", deconv), ("guided_backprop", guided)):
        out = project(model, "2", image, 0, [1], [2], method)
        want = np.zeros((1, 1, 3, 3))
        want[0, 0, 1, 2] = expected
        np.testing.assert_allclose(out, want)
    assert type(model[1]) is nn.ReLU  # the swap is undone


def test_projection_lies_in_receptive_field(mnist_model):
    from featvis.vision.receptive import receptive_fields

    torch.manual_seed(1)
    images = torch.randn(3, 1, 28, 28)
    field = receptive_fields(mnist_model.module, (1, 1, 28, 28), ["conv2"])["conv2"]
    ys, xs = [0, 3, 6], [6, 3, 0]
    out = project(mnist_model.module, "conv2", images, 5, ys, xs)
    for n, (y, x) in enumerate(zip(ys, xs)):
        y0, y1, x0, x1 = field.box(y, x, 28, 28)
        outside = np.abs(out[n, 0]).copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() == 0
        assert np.abs(out[n, 0, y0:y1, x0:x1]).max() > 0


def test_cam_equals_grad_cam_at_the_pooled_map(mnist_model):
    torch.manual_seed(2)
    images = torch.randn(4, 1, 28, 28)
    cam, classes, prob = class_activation_map(mnist_model.module, images)
    gcam, gclasses, _ = grad_cam(mnist_model.module, "relu3", images)
    np.testing.assert_array_equal(classes, gclasses)
    h, w = cam.shape[1:]
    np.testing.assert_allclose(gcam, np.maximum(cam, 0) / (h * w), rtol=1e-5, atol=1e-7)
    logits = mnist_model.module(images)
    np.testing.assert_array_equal(classes, logits.argmax(1).numpy())
    np.testing.assert_allclose(prob, logits.softmax(1).max(1).values.detach().numpy(), rtol=1e-6)


def test_given_classes_are_used(mnist_model):
    images = torch.randn(2, 1, 28, 28)
    _, classes, _ = grad_cam(mnist_model.module, "conv3", images, [3, 9])
    assert classes.tolist() == [3, 9]
    with pytest.raises(AttributionError, match="one per image"):
        grad_cam(mnist_model.module, "conv3", images, [3])
    with pytest.raises(AttributionError, match="out of range"):
        grad_cam(mnist_model.module, "conv3", images, [3, 10])


def test_cam_refuses_a_nonlinear_head():
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with pytest.raises(AttributionError, match="Grad-CAM"):
        class_activation_map(model, torch.randn(2, 1, 8, 8))


def test_grad_cam_refuses_a_linear_layer(mnist_model):
    with pytest.raises(AttributionError, match="spatial grid"):
        grad_cam(mnist_model.module, "fc", torch.randn(1, 1, 28, 28))


def test_projection_needs_rectifier_modules():
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Tanh()).eval()
    with pytest.raises(AttributionError, match="rectifier"):
        project(model, "0", torch.randn(1, 1, 5, 5), 0, [0], [0])


class FunctionalReLU(nn.Module):
    """``two_by_one`` with its ReLU written in the forward, as users' own models often have it."""

    def __init__(self, a: float, b: float, relu) -> None:
        super().__init__()
        self.first, self.second, self.relu = nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False), relu
        with torch.no_grad():
            self.first.weight.fill_(a)
            self.second.weight.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.relu(self.first(x)))


@pytest.mark.parametrize("relu", [torch.relu, nn.functional.relu, lambda x: x.relu(),
                                  lambda x: nn.functional.relu(x, inplace=True), lambda x: x.relu_()])
def test_functional_relus_follow_the_same_rules(relu):
    torch.manual_seed(0)
    image = torch.randn(2, 1, 4, 4)
    for b in (2.0, -2.0):
        module, functional = two_by_one(3.0, b), FunctionalReLU(3.0, b, relu).eval()
        for method in ("deconvnet", "guided_backprop"):
            want = project(module, "2", image, 0, [1, 2], [2, 0], method)
            got = project(functional, "second", image, 0, [1, 2], [2, 0], method)
            np.testing.assert_array_equal(got, want)
    plain = image.clone().requires_grad_(True)  # outside a projection the model is untouched
    functional.second(torch.relu(functional.first(plain))).sum().backward()
    assert float(plain.grad.abs().sum()) > 0 and torch.equal(functional(image), module(image))
