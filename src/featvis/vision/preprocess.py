"""How images are prepared for a model: size, channels, normalisation, resampling, class names.

Kept apart from model building so that data loading, timm support and the start checks can
use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "box", "bilinear", "hamming", "bicubic", "lanczos")  # PIL's resampling filters


@dataclass(frozen=True)
class Preprocess:
    """How images must be prepared for a model; travels with the model.

    ``interpolation`` is the filter images are resized with (timm's pretrained config says which
    for timm models; bilinear for the others). ``crop_pct`` is timm's eval crop: the image is
    resized to cover ``size / crop_pct`` and the centre ``size`` kept; 1 keeps the whole of the
    shorter side (the default, and every non-timm model's).
    """

    image_size: int | tuple[int, int]  # a side, or (height, width) for a non-square input
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int = 3
    class_names: tuple[str, ...] = field(default=(), repr=False)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation {self.interpolation!r} is not a resampling filter featvis knows "
                             f"(one of {', '.join(INTERPOLATIONS)})")
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct {self.crop_pct!r} must be in (0, 1]: the share of the resized image kept")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the model's input."""
        side = self.image_size
        return (int(side), int(side)) if isinstance(side, int) else (int(side[0]), int(side[1]))

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        return (batch, self.channels, *self.size)


def imagenet_class_names() -> tuple[str, ...]:
    """ImageNet-1k class names, from torchvision's metadata (no download)."""
    import torchvision

    return tuple(torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"])


def fit_channels(preprocess: Preprocess, module: nn.Module) -> Preprocess:
    """Channels from the first convolution, and a mean and std per channel: ImageNet's (and timm's)
    are RGB even when the model was built for other channel counts, so those get their average."""
    from torch import nn

    first = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    channels = preprocess.channels if first is None else first.in_channels
    if len(preprocess.mean) == channels:
        return replace(preprocess, channels=channels)
    mean, std = (sum(v) / len(v) for v in (preprocess.mean, preprocess.std))
    return replace(preprocess, channels=channels, mean=(mean,) * channels, std=(std,) * channels)
