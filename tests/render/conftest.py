"""Shared fixtures: a hand-built grating network and the real EfficientNet-Lite0."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn


def grating_kernel(size: int, frequency: float, angle_deg: float) -> torch.Tensor:
    """An oriented grating cos(2 pi f (x cos a + y sin a)) under a wide Gaussian, zero mean."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    y, x = torch.meshgrid(r, r, indexing="ij")
    a = math.radians(angle_deg)
    wave = torch.cos(2 * math.pi * frequency * (x * math.cos(a) + y * math.sin(a)))
    window = torch.exp(-(x**2 + y**2) / (2 * (size / 3) ** 2))
    kernel = wave * window
    return (kernel - kernel.mean()).float()  # zero mean: a flat image gives no response


class GratingNet(nn.Sequential):
    """conv (channel 0: a grating on luminance, channel 1: its 90-degree turn) -> ReLU."""

    def __init__(self, frequency: float = 0.125, angle_deg: float = 30.0, size: int = 21) -> None:
        conv = nn.Conv2d(3, 2, size, bias=False)
        with torch.no_grad():
            conv.weight[0] = grating_kernel(size, frequency, angle_deg).expand(3, size, size) / 3
            conv.weight[1] = grating_kernel(size, frequency, angle_deg + 90).expand(3, size, size) / 3
        super().__init__()
        self.add_module("conv", conv)
        self.add_module("relu", nn.ReLU())
        self.eval()


@pytest.fixture(scope="session")
def grating_net() -> GratingNet:
    return GratingNet()


@pytest.fixture(scope="session")
def effnet() -> nn.Module:
    from featvis.vision.models import load_model

    torch.set_num_threads(2)
    return load_model("efficientnet_lite0").module
