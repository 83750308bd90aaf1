"""The first conv is the first to run, and filters are shown around zero."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from featvis.vision.weights import filter_grid, filter_images, first_conv


class DefinedBackwards(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.late = nn.Conv2d(4, 2, 1)
        self.early = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.late(self.early(x))


def test_first_conv_is_execution_order_not_definition_order():
    name, conv = first_conv(DefinedBackwards(), (1, 3, 8, 8))
    assert name == "early" and conv.in_channels == 3


def test_filter_images_keep_zero_grey_and_sign():
    weight = torch.zeros(2, 3, 2, 2)
    weight[0, 0, 0, 0] = 2.0
    weight[1, 2, 1, 1] = -4.0
    first, second = filter_images(weight)
    assert first.shape == (2, 2, 3)
    assert first[0, 0, 0] == 1.0 and first[1, 1, 1] == 0.5
    assert second[1, 1, 2] == 0.0 and second[0, 0, 0] == 0.5


def test_grayscale_filters_and_grid(lite0):
    gray = filter_images(torch.randn(4, 1, 5, 5))
    assert gray[0].shape == (5, 5) and all(0 <= g.min() and g.max() <= 1 for g in gray)
    figure = filter_grid(lite0.module, (1, 3, 64, 64), "lite0")
    assert len(figure.axes) == 32 and "32 first-layer filters" in figure._suptitle.get_text()
    assert np.isclose(figure.get_figwidth(), 6 * 0.6 * 1.12 + 0.072)
