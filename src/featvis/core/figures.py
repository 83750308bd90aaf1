"""Deterministic plotting: fixed style, fixed metadata, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from featvis.core.io import atomic_path  # noqa: E402

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
    gap = 0.12 * cell_inches
    title_lines = (suptitle.count("\n") + 1) if suptitle else 0
    top = 0.16 * title_lines + 0.1 + (0.12 if titles else 0.0)
    width = ncols * (cell_inches + gap) + gap
    height = nrows * (cell_inches + gap) + gap + top
    fig = plt.figure(figsize=(max(width, 2.6 if suptitle else 0.0), height))
    left_pad = (fig.get_figwidth() - width) / 2
    for i, image in enumerate(images):
        row, col = divmod(i, ncols)
        x = left_pad + gap + col * (cell_inches + gap)
        y = height - top - (row + 1) * (cell_inches + gap)
        ax = fig.add_axes((x / fig.get_figwidth(), y / height, cell_inches / fig.get_figwidth(), cell_inches / height))
        ax.imshow(image, cmap=cmap if np.ndim(image) == 2 else None, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.axis("off")
        if titles:
            ax.set_title(titles[i], fontsize=6, pad=2)
    if suptitle:
        fig.suptitle(suptitle, fontsize=8, y=1 - 0.05 / height, va="top")
    return fig
