"""A deterministic generated image dataset for the scale benchmark (benchmarks/scale.py).

Image ``i`` is a random crop of one of the bundled offline photos (``featvis.vision.data``'s
sources), with a random aspect, a horizontal flip half the time and colour jitter
(brightness, contrast, saturation), resized to 160-256 px a side and written as JPEG
(every ``PNG_EVERY``-th as PNG), so the pipeline decodes real, varied files. Each image
draws from its own RNG seeded by (seed, i): the bytes do not depend on the number of
worker processes or on the order they run in. Layout: ``<out>/<photo>/<i:07d>.<ext>``,
one class folder per photo, as a ``source: folder`` dataset expects.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from featvis.vision.data import _as_rgb, _photo_sources

PNG_EVERY = 50  # one image in 50 is a PNG: both decoders are exercised
SIDE_RANGE = (160, 256)  # output sides in px: around the model's 160 px input
JPEG_QUALITY = 90

_PHOTOS: dict[str, np.ndarray] = {}  # per process: the photos, decoded once


def photos() -> dict[str, np.ndarray]:
    """The bundled photos as RGB uint8 arrays, by name (sorted), loaded once per process."""
    if not _PHOTOS:
        _PHOTOS.update((name, _as_rgb(load())) for name, load in sorted(_photo_sources().items()))
    return _PHOTOS


def image_path(out_dir: str | os.PathLike, index: int) -> Path:
    names = list(photos())
    ext = "png" if index % PNG_EVERY == PNG_EVERY - 1 else "jpg"
    return Path(out_dir) / names[index % len(names)] / f"{index:07d}.{ext}"


def make_image(index: int, seed: int = 0) -> Image.Image:
    """Image ``index``: crop, flip and colour jitter of photo ``index % len(photos)``."""
    rng = np.random.default_rng([seed, index])
    names = list(photos())
    photo = photos()[names[index % len(names)]]
    height, width = photo.shape[:2]
    side = min(height, width) * rng.uniform(0.25, 1.0)
    aspect = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    crop_h, crop_w = min(height, int(side * np.sqrt(aspect))), min(width, int(side / np.sqrt(aspect)))
    top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    image = Image.fromarray(photo[top : top + crop_h, left : left + crop_w])
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out_h, out_w = (int(s) for s in rng.integers(SIDE_RANGE[0], SIDE_RANGE[1] + 1, size=2))
    image = image.resize((out_w, out_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        image = enhance(image).enhance(float(rng.uniform(0.7, 1.3)))
    return image


def _write_range(out_dir: str, start: int, stop: int, seed: int) -> int:
    for index in range(start, stop):
        path = image_path(out_dir, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        image = make_image(index, seed)
        if path.suffix == ".png":
            image.save(path, format="PNG")
        else:
            image.save(path, format="JPEG", quality=JPEG_QUALITY)
    return stop - start


def generate(out_dir: str | os.PathLike, n: int, seed: int = 0, workers: int = 1, chunk: int = 2000) -> list[Path]:
    """Write images 0 .. n-1 under ``out_dir`` (skipped when all are there); their paths in order."""
    if n < 1:
        raise ValueError(f"the benchmark needs at least 1 image, got n={n}")
    paths = [image_path(out_dir, i) for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    ranges = [(str(out_dir), a, min(a + chunk, n), seed) for a in range(0, n, chunk)]
    if workers <= 1:
        for args in ranges:
            _write_range(*args)
    else:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_write_range, *zip(*ranges)))
    return paths
