"""Transformation robustness: random pad, jitter, scale, rotation and colour jitter.

Each transform is an ``nn.Module`` called as ``t(images, rng)`` and draws its random
values per item from :class:`ItemRng`, so each render in a batch sees its own stream.
The geometric ones are affine maps; :class:`Compose` multiplies a run of them into a
single matrix per item and resamples once (one bilinear sampling instead of five), which
is what keeps transforms cheap next to the model. The sampling is :func:`bilinear_sample`:
``grid_sample`` on the CPU, the same result by ``gather`` elsewhere, whose backward is
deterministic on CUDA where ``grid_sample``'s is not.

Affine maps are written in pixel units around the image centre, from output pixel
position to input pixel position (the form ``affine_grid`` wants).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from featvis.core.registry import registrar

TRANSFORMS: dict[str, Callable[..., nn.Module]] = {}


class ImageTooSmallError(ValueError):
    """The image is smaller than the transform chain needs."""


register_transform = registrar(TRANSFORMS)


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any printable parts (unlike hash(), same in every process)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class ItemRng:
    """One random generator per batch item."""

    def __init__(self, seeds: Sequence[int], salt: str = "transforms") -> None:
        self.gens = [torch.Generator().manual_seed(derive_seed(s, salt)) for s in seeds]

    def __len__(self) -> int:
        return len(self.gens)

    def uniform(self, low: float, high: float) -> torch.Tensor:
        return torch.cat([torch.rand(1, generator=g) for g in self.gens]) * (high - low) + low

    def choice(self, values: Sequence[float]) -> torch.Tensor:
        table = torch.as_tensor(values, dtype=torch.float32)
        return table[torch.cat([torch.randint(len(values), (1,), generator=g) for g in self.gens])]


class AffineTransform(nn.Module):
    """A geometric transform: a (B, 3, 3) matrix per call and a fixed output size."""

    fill: float | None = None  # constant fill outside the image; None keeps the chain's

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size

    def min_size(self) -> int:
        return 1

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, images: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        size = tuple(images.shape[-2:])
        fill = 0.5 if self.fill is None else self.fill
        return warp(images, self.matrices(rng, size), self.out_size(size), fill)


def warp(images: torch.Tensor, matrices: torch.Tensor, out_size: tuple[int, int], fill: float,
         gain: torch.Tensor | None = None, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Resample ``images`` by pixel-space matrices (output -> input), constant ``fill`` outside.

    ``gain``/``bias`` apply ``gain * out + bias`` (e.g. the model's normalisation) in the same
    elementwise pass that adds the fill back.
    """
    (h_in, w_in), (h_out, w_out) = images.shape[-2:], out_size
    to_norm_in = torch.diag(torch.tensor([2.0 / w_in, 2.0 / h_in, 1.0]))
    from_norm_out = torch.diag(torch.tensor([w_out / 2.0, h_out / 2.0, 1.0]))
    theta = (to_norm_in @ matrices @ from_norm_out)[:, :2].to(images)
    out = bilinear_sample(images - fill, affine_grid(theta, h_out, w_out))
    if gain is None:
        return out + fill
    return torch.addcmul(bias + fill * gain, out, gain)


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, ..., align_corners=False)`` by broadcasting (CPU's builds a base grid and a bmm)."""
    xs = (torch.arange(width, dtype=theta.dtype, device=theta.device) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=theta.dtype, device=theta.device) * 2 + 1) / height - 1
    t = theta[:, :, :, None, None]  # (B, 2, 3, 1, 1)
    grid = t[:, :, 0] * xs[None, None, None, :] + t[:, :, 1] * ys[None, None, :, None] + t[:, :, 2]
    return grid.permute(0, 2, 3, 1)  # (B, H, W, 2)


# Torch's own CPU kernels for grid_sample and bilinear resizing are deterministic (one thread per
# batch item or channel) and several times faster than the portable forms below; elsewhere (CUDA)
# their backward accumulates with atomics and has no deterministic kernel. Tests set this False to
# run the portable forms, the ones CUDA runs, on the CPU.
TORCH_KERNELS_ON_CPU = True


def _torch_kernels(x: torch.Tensor) -> bool:
    return TORCH_KERNELS_ON_CPU and x.device.type == "cpu"


def bilinear_sample(images: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """``F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)``
    with a backward that is deterministic on every device: off the CPU, one ``gather`` of the four
    neighbours, whose backward (a ``scatter_add``) is deterministic on CUDA under
    ``torch.use_deterministic_algorithms(True)``. Gradients flow to ``images`` only."""
    if _torch_kernels(images):
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    batch, channels, height, width = images.shape
    out_h, out_w = grid.shape[1:3]
    # grid_sample's unnormalisation for align_corners=False, in its float operations
    x = (grid[..., 0] + 1) * (width / 2) - 0.5
    y = (grid[..., 1] + 1) * (height / 2) - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    indices, weights = [], []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)  # zeros padding outside
            indices.append(yi.clamp(0, height - 1) * width + xi.clamp(0, width - 1))
            weights.append(torch.where(inside, wy * wx, 0.0))
    index = torch.stack(indices, 1).reshape(batch, 1, 4 * out_h * out_w).expand(batch, channels, -1)
    corners = images.reshape(batch, channels, height * width).gather(2, index).view(batch, channels, 4, out_h, out_w)
    weight = torch.stack(weights, 1).to(images.dtype)[:, None]  # (B, 1, 4, H, W)
    return (corners * weight).sum(2)


def resize_bilinear(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(images, size, mode="bilinear", align_corners=False)`` with a backward that is
    deterministic on every device: off the CPU, two matrix products with (out, in) interpolation
    matrices (``F.interpolate``'s bilinear backward has no deterministic CUDA kernel)."""
    if _torch_kernels(images):
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    rows = _interpolation_matrix(images.shape[-2], size[0]).to(images)
    cols = _interpolation_matrix(images.shape[-1], size[1]).to(images)
    return rows @ images @ cols.T


def _interpolation_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) linear interpolation weights, half-pixel centres, edge clamped (align_corners=False)."""
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)  # in float32, as F.interpolate computes it
    source = (scale * (torch.arange(n_out, dtype=torch.float32) + 0.5) - 0.5).clamp(min=0)
    low = source.long().clamp(max=n_in - 1)
    high = (low + 1).clamp(max=n_in - 1)
    frac = source - low
    matrix = torch.zeros(n_out, n_in)
    rows = torch.arange(n_out)
    matrix.index_put_((rows, low), 1 - frac, accumulate=True)
    matrix.index_put_((rows, high), frac, accumulate=True)
    return matrix


def _eye(batch: int) -> torch.Tensor:
    return torch.eye(3).expand(batch, 3, 3).clone()


@register_transform("pad")
class Pad(AffineTransform):
    """Grow the canvas by ``size`` pixels on each side, filled with ``fill`` (grey by default)."""

    def __init__(self, size: int, fill: float = 0.5) -> None:
        super().__init__()
        self.size, self.fill = int(size), float(fill)

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] + 2 * self.size, size[1] + 2 * self.size

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        return _eye(len(rng))

    def forward(self, images: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        return F.pad(images, [self.size] * 4, value=self.fill)


@register_transform("jitter")
class Jitter(AffineTransform):
    """A random crop ``size`` pixels smaller: an integer shift of 0..size per item."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = int(size)

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] - self.size, size[1] - self.size

    def min_size(self) -> int:
        return self.size + 1

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        offsets = list(range(self.size + 1))
        m = _eye(len(rng))
        m[:, 0, 2] = rng.choice(offsets) - self.size / 2
        m[:, 1, 2] = rng.choice(offsets) - self.size / 2
        return m


@register_transform("scale")
class RandomScale(AffineTransform):
    """Zoom about the centre by a factor drawn from ``scales`` (canvas size unchanged)."""

    def __init__(self, scales: Sequence[float] = tuple(1 + (i - 5) / 50 for i in range(11))) -> None:
        super().__init__()
        self.scales = [float(s) for s in scales]

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        inv = 1.0 / rng.choice(self.scales)
        m = _eye(len(rng))
        m[:, 0, 0] = inv
        m[:, 1, 1] = inv
        return m


@register_transform("rotate")
class RandomRotate(AffineTransform):
    """Rotate about the centre by an angle (degrees) drawn from ``angles``."""

    def __init__(self, angles: Sequence[float] = tuple(list(range(-10, 11)) + [0] * 5)) -> None:
        super().__init__()
        self.angles = [float(a) for a in angles]

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        theta = rng.choice(self.angles) * (math.pi / 180)
        cos, sin = torch.cos(theta), torch.sin(theta)
        m = _eye(len(rng))
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
        return m


@register_transform("resize")
class Resize(AffineTransform):
    """Resample to a fixed ``size`` (the model's input size: a side or (height, width)), bilinear."""

    def __init__(self, size: int | Sequence[int]) -> None:
        super().__init__()
        self.size = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    def out_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return self.size

    def matrices(self, rng: ItemRng, size: tuple[int, int]) -> torch.Tensor:
        m = _eye(len(rng))
        m[:, 0, 0] = size[1] / self.size[1]
        m[:, 1, 1] = size[0] / self.size[0]
        return m


@register_transform("colour_jitter")
class ColourJitter(nn.Module):
    """Per-item, per-channel random gain (1 +- ``gain``) and offset (+- ``offset``)."""

    def __init__(self, gain: float = 0.1, offset: float = 0.05) -> None:
        super().__init__()
        self.gain, self.offset = float(gain), float(offset)

    def forward(self, images: torch.Tensor, rng: ItemRng) -> torch.Tensor:
        batch = images.shape[0]
        gain = torch.stack([rng.uniform(1 - self.gain, 1 + self.gain) for _ in range(3)], 1)
        offset = torch.stack([rng.uniform(-self.offset, self.offset) for _ in range(3)], 1)
        shape = (batch, 3, 1, 1)
        return images * gain.reshape(shape).to(images) + offset.reshape(shape).to(images)


class Compose(nn.Module):
    """Apply transforms in order, fusing consecutive affine ones into one resampling."""

    def __init__(self, transforms: Sequence[nn.Module], fuse: bool = True) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)
        self.fuse = fuse

    def check_size(self, size: int) -> tuple[int, int]:
        """The output size for a ``size``-pixel input; too small an input is a clear error."""
        shape = (size, size)
        for t in self.transforms:
            need = t.min_size() if isinstance(t, AffineTransform) else 1
            if min(shape) < need:
                raise ImageTooSmallError(
                    f"image size {size} is too small for the transforms: {type(t).__name__} needs at "
                    f"least {need} px but gets {min(shape)} px; use a larger size or smaller jitter"
                )
            if isinstance(t, AffineTransform):
                shape = t.out_size(shape)
        return shape

    def forward(self, images: torch.Tensor, rng: ItemRng,
                post: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Transform ``images``; ``post = (gain, bias)`` then maps the result to ``gain * x + bias``."""
        if not self.fuse:
            for t in self.transforms:
                images = t(images, rng)
            return images if post is None else torch.addcmul(post[1], images, post[0])
        run: list[AffineTransform] = []
        for t in self.transforms:
            if isinstance(t, AffineTransform):
                run.append(t)
                continue
            images = self._flush(images, run, rng)
            run = []
            images = t(images, rng)
        if run and not (len(run) == 1 and isinstance(run[0], Pad)):
            return self._flush(images, run, rng, post)  # the post map rides on the last resampling
        images = self._flush(images, run, rng)
        return images if post is None else torch.addcmul(post[1], images, post[0])

    @staticmethod
    def _flush(images: torch.Tensor, run: list[AffineTransform], rng: ItemRng,
               post: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if not run:
            return images
        if len(run) == 1 and isinstance(run[0], Pad):
            return run[0](images, rng)
        size = tuple(images.shape[-2:])
        total = _eye(images.shape[0])
        fill = 0.5
        for t in run:
            total = total @ t.matrices(rng, size)
            size = t.out_size(size)
            fill = t.fill if t.fill is not None else fill
        gain, bias = post if post is not None else (None, None)
        return warp(images, total, size, fill, gain, bias)


STANDARD_SIZE = 128  # the render side the Distill recipe's pixel amounts were set for


def standard_transforms(size: int = STANDARD_SIZE) -> list[dict[str, Any]]:
    """The Distill recipe (Olah et al. 2017): pad 12, jitter 8, scale, rotate, jitter 4, at
    ``STANDARD_SIZE`` px; smaller renders get pixel amounts shrunk in proportion (at least 1)."""
    def px(amount: int) -> int:
        return max(1, round(amount * min(1.0, size / STANDARD_SIZE)))

    return [
        {"name": "pad", "size": px(12)},
        {"name": "jitter", "size": px(8)},
        {"name": "scale"},
        {"name": "rotate"},
        {"name": "jitter", "size": px(4)},
    ]


def build_transforms(specs: Sequence[Mapping[str, Any]] | str | None, fuse: bool = True) -> Compose:
    """``[{"name": "jitter", "size": 8}, ...]``, ``"standard"`` or ``None``/``"none"``."""
    if specs is None or specs == "none":
        specs = []
    elif specs == "standard":
        specs = standard_transforms()
    elif isinstance(specs, str):
        raise ValueError(f"transforms must be a list, 'standard' or 'none', got {specs!r}")
    modules = []
    for spec in specs:
        options = dict(spec)
        name = options.pop("name", None)
        if name not in TRANSFORMS:
            raise KeyError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
        modules.append(TRANSFORMS[name](**options))
    return Compose(modules, fuse=fuse)
