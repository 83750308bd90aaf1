"""Image parametrizations: what the optimiser actually changes.

Every parametrization is an ``nn.Module`` whose ``forward()`` returns a batch of
images in (0, 1), shape (B, 3, H, W). Internally an image is ``sigmoid(colour(x))``
where ``x = spatial()`` lives in a decorrelated colour space; ``load_images`` inverts
that chain, which lets octaves continue from an upsampled render and lets a saved
render resume. Each item starts from its own seed, so a render does not depend on
which other renders share its batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from featvis.core.registry import registrar
from featvis.render.transforms import resize_bilinear

# Square root of ImageNet's RGB covariance (U * sqrt(S) of its SVD), as in Lucid.
IMAGENET_COLOUR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float64
)

PARAMS: dict[str, type[ImageParam]] = {}


register_param = registrar(PARAMS)


def colour_sqrt_from_images(images: np.ndarray) -> np.ndarray:
    """Square root of the RGB covariance of ``images`` ((N, H, W, 3) in [0, 1])."""
    pixels = np.asarray(images, dtype=np.float64).reshape(-1, 3)
    eigvals, eigvecs = np.linalg.eigh(np.cov(pixels, rowvar=False))
    return eigvecs @ np.diag(np.sqrt(np.clip(eigvals, 0.0, None)))


def colour_matrix(colour: str | np.ndarray | None) -> torch.Tensor:
    """The 3x3 map from decorrelated to RGB space, scaled so its widest column has norm 1."""
    if colour is None or (isinstance(colour, str) and colour == "none"):
        return torch.eye(3)
    if isinstance(colour, str):
        if colour != "imagenet":
            raise ValueError(f"unknown colour {colour!r}; use 'imagenet', 'none' or a 3x3 matrix")
        colour = IMAGENET_COLOUR_SQRT
    matrix = np.asarray(colour, dtype=np.float64)
    if matrix.shape != (3, 3):
        raise ValueError(f"a colour matrix must be 3x3, got shape {matrix.shape}")
    return torch.tensor(matrix / np.linalg.norm(matrix, axis=0).max(), dtype=torch.float32)


def item_randn(seeds: Sequence[int], shape: Sequence[int], scale: float = 1.0) -> torch.Tensor:
    """(len(seeds), *shape) normal noise; item i depends on ``seeds[i]`` only."""
    out = [torch.randn(*shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    return torch.stack(out) * scale


class ImageParam(nn.Module):
    """Base class: subclasses define ``spatial()`` and ``set_spatial(x)``."""

    def __init__(self, seeds: Sequence[int], size: int | tuple[int, int],
                 colour: str | np.ndarray | None = "imagenet", shared_lowres: Sequence[int] = ()) -> None:
        super().__init__()
        self.seeds = [int(s) for s in seeds]
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.register_buffer("colour", colour_matrix(colour))
        # Low-resolution components shared by the whole batch (interpolation frames).
        self.shared = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 3, max(1, self.height // f), max(1, self.width // f)))
            for f in shared_lowres
        )

    @property
    def batch(self) -> int:
        return len(self.seeds)

    def spatial(self) -> torch.Tensor:
        raise NotImplementedError

    def set_spatial(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def decorrelated(self) -> torch.Tensor:
        x = self.spatial()
        for part in self.shared:
            x = x + resize_bilinear(part, (self.height, self.width))  # deterministic backward on CUDA
        return x

    def forward(self) -> torch.Tensor:
        x = self.decorrelated()
        # (3, 3) @ (B, 3, HW): a broadcast batched matmul, no permuted copies (unlike einsum)
        return torch.sigmoid(torch.matmul(self.colour, x.flatten(2)).view_as(x))

    @torch.no_grad()
    def load_images(self, images: torch.Tensor) -> None:
        """Set the parameters so that ``forward()`` returns ``images`` (B, 3, H, W) in (0, 1)."""
        logits = torch.logit(images.float().clamp(1e-4, 1 - 1e-4))
        x = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(self.colour), logits)
        for part in self.shared:
            part.zero_()
        self.set_spatial(x)


@register_param("pixel")
class PixelParam(ImageParam):
    """One free value per pixel and colour channel."""

    def __init__(self, seeds: Sequence[int], size: int | tuple[int, int], sd: float = 0.01,
                 **kw: Any) -> None:
        super().__init__(seeds, size, **kw)
        self.pixels = nn.Parameter(item_randn(self.seeds, (3, self.height, self.width), sd))

    def spatial(self) -> torch.Tensor:
        return self.pixels

    def set_spatial(self, x: torch.Tensor) -> None:
        self.pixels.copy_(x)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """1/f^decay scaling of an rfft2 spectrum, so each frequency band starts with equal energy."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(height, width)) ** decay_power
    return torch.tensor(scale, dtype=torch.float32)


@register_param("fourier")
class FourierParam(ImageParam):
    """Real and imaginary parts of the image's 2-D spectrum, scaled by 1/f (Lucid's fft_image)."""

    def __init__(self, seeds: Sequence[int], size: int | tuple[int, int], sd: float = 0.01,
                 decay_power: float = 1.0, **kw: Any) -> None:
        super().__init__(seeds, size, **kw)
        # Lucid's /4 folded into the scale: one multiply per step instead of two.
        self.register_buffer("scale", spectrum_scale(self.height, self.width, decay_power) / 4.0)
        shape = (3, self.height, self.width // 2 + 1, 2)
        self.spectrum = nn.Parameter(item_randn(self.seeds, shape, sd))

    def spatial(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        return torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")

    def set_spatial(self, x: torch.Tensor) -> None:
        spectrum = torch.fft.rfft2(x, norm="ortho") / self.scale
        self.spectrum.copy_(torch.view_as_real(spectrum))


@register_param("laplacian")
class LaplacianParam(ImageParam):
    """A sum of upsampled tensors at 1, 1/2, 1/4, ... resolution (a Laplacian pyramid)."""

    def __init__(self, seeds: Sequence[int], size: int | tuple[int, int], levels: int = 4,
                 sd: float = 0.01, **kw: Any) -> None:
        super().__init__(seeds, size, **kw)
        shapes = [(3, max(1, self.height >> k), max(1, self.width >> k)) for k in range(levels)]
        self.levels = nn.ParameterList(
            nn.Parameter(item_randn([s + 7919 * k for s in self.seeds], shape, sd))
            for k, shape in enumerate(shapes)
        )

    def spatial(self) -> torch.Tensor:
        size = (self.height, self.width)
        out = self.levels[0]
        for level in self.levels[1:]:
            out = out + resize_bilinear(level, size)
        return out

    def set_spatial(self, x: torch.Tensor) -> None:
        self.levels[0].copy_(x)
        for level in self.levels[1:]:
            level.zero_()


def magnitude_from_images(images: Sequence[np.ndarray], height: int, width: int,
                          colour: torch.Tensor) -> torch.Tensor:
    """Mean rfft2 magnitude (3, H, W//2+1) of ``images`` ((h, w, 3) uint8 or [0, 1] floats).

    Measured in the decorrelated logit space that parametrizations decode from, so a
    random phase decodes to an image with natural-image statistics.
    """
    spectra = []
    inverse = torch.linalg.inv(colour)
    for image in images:
        x = torch.tensor(np.asarray(image, dtype=np.float32))
        x = x / 255.0 if np.asarray(image).dtype == np.uint8 else x
        side = min(x.shape[:2])
        top, left = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
        x = x[top:top + side, left:left + side].permute(2, 0, 1)[None]
        x = F.interpolate(x, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        x = torch.einsum("ij,bjhw->bihw", inverse, torch.logit(x.clamp(0.02, 0.98)))
        # A Hann window keeps the photo's borders (not periodic) from adding a bright "+" to the spectrum.
        window = torch.outer(torch.hann_window(height, periodic=False), torch.hann_window(width, periodic=False))
        x = (x - x.mean((2, 3), keepdim=True)) * window / window.pow(2).mean().sqrt()
        spectra.append(torch.fft.rfft2(x, norm="ortho").abs())
    return torch.cat(spectra).mean(0)


@functools.lru_cache(maxsize=1)
def bundled_photos() -> tuple[np.ndarray, ...]:
    """Natural photos that ship with scikit-image and scikit-learn (no download)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    names = ["astronaut", "chelsea", "coffee", "rocket"]
    return tuple([getattr(data, n)()[..., :3] for n in names] + list(load_sample_images().images))


@register_param("maco")
class MacoParam(ImageParam):
    """Magnitude-constrained (MACO, Fel et al. 2023): a fixed natural magnitude, free phase."""

    def __init__(self, seeds: Sequence[int], size: int | tuple[int, int],
                 magnitude_images: Sequence[np.ndarray] | None = None, **kw: Any) -> None:
        super().__init__(seeds, size, **kw)
        photos = bundled_photos() if magnitude_images is None else magnitude_images
        self.register_buffer("magnitude", magnitude_from_images(photos, self.height, self.width, self.colour))
        shape = (3, self.height, self.width // 2 + 1)
        gens = [torch.Generator().manual_seed(s) for s in self.seeds]
        phase = torch.stack([(torch.rand(*shape, generator=g) * 2 - 1) * np.pi for g in gens])
        self.phase = nn.Parameter(phase)

    def spatial(self) -> torch.Tensor:
        spectrum = torch.polar(self.magnitude.expand_as(self.phase), self.phase)
        return torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho")

    def set_spatial(self, x: torch.Tensor) -> None:
        """Keep the fixed magnitude; take the phase of ``x`` (not an exact inverse)."""
        self.phase.copy_(torch.fft.rfft2(x, norm="ortho").angle())


def make_param(name: str, seeds: Sequence[int], size: int | tuple[int, int], **options: Any) -> ImageParam:
    """Build a registered parametrization by name."""
    if name not in PARAMS:
        raise KeyError(f"unknown parametrization {name!r}; known: {', '.join(sorted(PARAMS))}")
    return PARAMS[name](seeds, size, **options)
