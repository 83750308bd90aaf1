"""Deterministic plotting: fixed style, fixed metadata, atomic writes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # a notebook keeps its inline backend (featvis.api); jobs draw off-screen
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


TITLE_FONT = 6  # points: cell titles and row labels
SUPTITLE_FONT = 8


def text_width_inches(text: str, fontsize: float) -> float:
    """Width of the widest line of ``text`` from the font's glyph metrics (no renderer, so
    layouts computed from it are deterministic)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    prop = FontProperties(size=fontsize)
    widths = [TextToPath().get_text_width_height_descent(line, prop, ismath=False)[0] for line in text.split("\n")]
    return max(widths) / 72 * 1.05  # +5%: Agg's hinting draws slightly wider than the outlines


def image_grid(
    images: list[np.ndarray],
    ncols: int,
    titles: list[str] | None = None,
    cell_inches: float = 1.0,
    suptitle: str | None = None,
    cmap: str = "gray",
    value_range: tuple[float, float] | None = None,
    row_labels: list[str] | None = None,
) -> plt.Figure:
    """A grid of images without axes; grayscale images use ``cmap`` over ``value_range``
    (default: each image's own range). ``titles`` go above each cell (each row gets room for
    them), ``row_labels`` to the left of each row; the figure is widened to fit the suptitle."""
    vmin, vmax = value_range or (None, None)
    nrows = max(1, -(-len(images) // ncols))
    gap = 0.12 * cell_inches
    title_h = 0.13 if titles else 0.0  # a 6 pt title and its 2 pt pad, above every row
    label_w = max(text_width_inches(t, TITLE_FONT) for t in row_labels) + 0.06 if row_labels else 0.0
    title_lines = (suptitle.count("\n") + 1) if suptitle else 0
    top = 0.16 * title_lines + 0.1
    pitch = cell_inches + gap + title_h
    width = label_w + ncols * (cell_inches + gap) + gap
    height = nrows * pitch + gap + top
    suptitle_w = max(2.6, text_width_inches(suptitle, SUPTITLE_FONT) + 0.2) if suptitle else 0.0
    fig = plt.figure(figsize=(max(width, suptitle_w), height))
    fig_w = fig.get_figwidth()
    left = (fig_w - width) / 2 + label_w + gap  # left edge of the first column
    for i, image in enumerate(images):
        row, col = divmod(i, ncols)
        x = left + col * (cell_inches + gap)
        y = height - top - row * pitch - title_h - cell_inches
        ax = fig.add_axes((x / fig_w, y / height, cell_inches / fig_w, cell_inches / height))
        ax.imshow(image, cmap=cmap if np.ndim(image) == 2 else None, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.axis("off")
        if titles:
            ax.set_title(titles[i], fontsize=TITLE_FONT, pad=2)
    for row, label in enumerate(row_labels or []):
        y = height - top - row * pitch - title_h - cell_inches / 2
        fig.text((left - 0.04) / fig_w, y / height, label, fontsize=TITLE_FONT, ha="right", va="center")
    if suptitle:
        fig.suptitle(suptitle, fontsize=SUPTITLE_FONT, y=1 - 0.05 / height, va="top")
    return fig
