"""Activation capture: right tensors, early stop, hooks released, unknown names listed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from featvis.core.hooks import UnknownLayerError, capture, get_layer, run_to_layers
from featvis.vision.models import MnistCNN


def test_unknown_layer_names_the_closest_first():
    with pytest.raises(UnknownLayerError, match=r"unknown layer 'conv9' \(closest: conv3, conv2, conv1; 11 in all\)"):
        get_layer(MnistCNN(), "conv9")


def test_capture_returns_the_layer_outputs():
    model = MnistCNN().eval()
    x = torch.randn(2, 1, 28, 28)
    with capture(model, ["conv2", "fc"]) as outputs:
        logits = model(x)
    expected = model.conv2(model.pool1(model.relu1(model.conv1(x))))
    torch.testing.assert_close(outputs["conv2"], expected)
    torch.testing.assert_close(outputs["fc"], logits)


def test_early_stop_runs_nothing_deeper():
    model = MnistCNN().eval()
    calls = []
    model.conv3.register_forward_hook(lambda *a: calls.append("conv3"))
    with capture(model, ["conv2"], stop_early=True) as outputs:
        run_to_layers(model, torch.randn(1, 1, 28, 28), outputs)
    assert outputs["conv2"].shape == (1, 32, 14, 14) and calls == []


def test_hooks_are_released_even_after_an_error():
    model = MnistCNN()
    with pytest.raises(RuntimeError), capture(model, ["conv1", "fc"]):
        model(torch.randn(1, 3, 28, 28))  # wrong channel count
    assert all(not m._forward_hooks for m in model.modules())


def test_capture_keeps_graph_when_asked():
    model = nn.Sequential(nn.Linear(3, 2))
    with capture(model, ["0"], detach=False) as outputs:
        model(torch.randn(1, 3, requires_grad=True))
    assert outputs["0"].requires_grad
