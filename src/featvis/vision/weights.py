"""First-layer filters: the one place where weights are pictures."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from featvis.core.figures import image_grid, plt
from featvis.core.hooks import execution_order


def first_conv(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[str, nn.Conv2d]:
    """The first ``Conv2d`` the forward pass runs (definition order can differ)."""
    modules = dict(model.named_modules())
    convs = [name for name in execution_order(model, input_shape) if isinstance(modules[name], nn.Conv2d)]
    if not convs:
        raise ValueError("the model runs no Conv2d: there is no first-layer filter to show")
    return convs[0], modules[convs[0]]


def filter_images(weight: torch.Tensor) -> list[np.ndarray]:
    """Each filter scaled symmetrically around zero, so grey means 0 in every filter."""
    w = weight.detach().float().cpu().numpy()
    images = []
    for f in w:
        scale = np.abs(f).max() or 1.0
        image = 0.5 + 0.5 * f / scale
        images.append(image.transpose(1, 2, 0) if image.shape[0] == 3 else image.mean(axis=0))
    return images


def filter_grid(model: nn.Module, input_shape: tuple[int, ...], title: str, cell_inches: float = 0.6) -> plt.Figure:
    name, conv = first_conv(model, input_shape)
    images = filter_images(conv.weight)
    ncols = int(np.ceil(np.sqrt(len(images))))
    kh, kw = conv.kernel_size
    suptitle = f"{title}\n{len(images)} first-layer filters\n({name}, {kh}x{kw}x{conv.in_channels})"
    return image_grid(images, ncols, cell_inches=cell_inches, suptitle=suptitle, value_range=(0.0, 1.0))
