"""Deterministic plotting: fixed style, fixed metadata, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from featvis.io import atomic_path  # noqa: E402

# Matplotlib stamps dates and versions into files unless told not to.
_METADATA = {
    ".png": {"Software": None},
    ".svg": {"Date": None},
    ".pdf": {"CreationDate": None, "Producer": None, "Creator": None},
}

plt.rcParams["svg.hashsalt"] = "featvis"


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 100) -> None:
    """Save ``fig`` byte-reproducibly and close it."""
    suffix = Path(path).suffix.lower()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix[1:], dpi=dpi, metadata=_METADATA.get(suffix, {}))
    plt.close(fig)


def to_display(image: np.ndarray) -> np.ndarray:
    """Scale an array to [0, 1] for display; (C, H, W) becomes (H, W, C)."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image.transpose(1, 2, 0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    low, high = image.min(), image.max()
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def image_grid(
    images: list[np.ndarray],
    ncols: int,
    titles: list[str] | None = None,
    cell_inches: float = 1.0,
    suptitle: str | None = None,
    cmap: str = "gray",
    value_range: tuple[float, float] | None = None,
) -> plt.Figure:
    """A grid of images without axes; grayscale images use ``cmap`` over ``value_range``
    (default: each image's own range)."""
    vmin, vmax = value_range or (None, None)
    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches + 0.4 * bool(suptitle)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(image, cmap=cmap if np.ndim(image) == 2 else None, vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles:
            ax.set_title(titles[i], fontsize=6)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
