"""Image patches at a layer's exact receptive field, and their grid figures.

A patch is the input region one layer position can see (``featvis.vision.receptive``),
clipped at the image border. To keep the grid honest about clipping, each patch is
drawn on a canvas of the full receptive-field size (capped at the image size), with
the part that falls outside the image left in a flat grey.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from functools import lru_cache

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from featvis.core.figures import image_grid
from featvis.core.units import strip
from featvis.vision.data import display_image
from featvis.vision.receptive import LayerField as Field

log = logging.getLogger(__name__)

OUTSIDE = 128  # grey for the part of a receptive field beyond the image border
UNIT_PATCH_PX = 96  # side of each patch in a unit's strip (the gallery's unit pages)
TITLE_CHARS = 100  # a longer title line (a local field's reason) is wrapped rather than widening the figure


def patch_box(field: Field | None, y: int, x: int, size: int | tuple[int, int]) -> tuple[int, int, int, int]:
    """Clipped input box (y0, y1, x0, x1) of position (y, x) in an image of ``size`` (a side or
    (height, width)); the whole image for a global field."""
    height, width = (size, size) if isinstance(size, int) else size
    if field is None:
        return 0, height, 0, width
    return field.box(int(y), int(x), height, width)


def cut_patch(image: np.ndarray, field: Field | None, y: int, x: int) -> np.ndarray:
    """The receptive field of (y, x) in ``image`` (H, W[, 3]) on a canvas of the field's size,
    grey where the field lies outside the image."""
    height, width = image.shape[:2]
    if field is None:
        return image.copy()
    y0, y1, x0, x1 = field.box(int(y), int(x), height, width)
    fy0, fx0 = field.jump[0] * int(y) + field.lo[0], field.jump[1] * int(x) + field.lo[1]
    canvas_h, canvas_w = min(field.size[0], height), min(field.size[1], width)
    # Where the clipped box sits in the canvas: offset by what was cut at the top/left,
    # unless the field is larger than the image (then the canvas is the image).
    off_y = 0 if field.size[0] >= height else y0 - fy0
    off_x = 0 if field.size[1] >= width else x0 - fx0
    canvas = np.full((canvas_h, canvas_w, *image.shape[2:]), OUTSIDE, dtype=image.dtype)
    canvas[off_y : off_y + (y1 - y0), off_x : off_x + (x1 - x0)] = image[y0:y1, x0:x1]
    return canvas


def topk_patches(
    topk: dict[str, np.ndarray], field: Field | None, paths: Sequence[str], image_size: int | tuple[int, int],
    channels: int,
    which: Sequence[int],
    interpolation: str = "bilinear",
    crop_pct: float = 1.0,
) -> list[list[np.ndarray]]:
    """Patches for the listed channels, each a list of K patches (best first), cut from the images
    as the model saw them (its size, channels, interpolation and crop)."""

    @lru_cache(maxsize=1024)  # channels share images; bounded, so a large dataset cannot fill memory
    def image(index: int) -> np.ndarray:
        return display_image(paths[index], image_size, channels, interpolation, crop_pct)

    return [
        [cut_patch(image(int(i)), field, y, x) for i, y, x in zip(topk["image"][c], topk["y"][c], topk["x"][c])]
        for c in which
    ]


def unit_strip(patches: Sequence[np.ndarray], size: int = UNIT_PATCH_PX) -> np.ndarray:
    """One unit's K patches side by side as RGB uint8, each scaled to ``size`` px (nearest
    when enlarging, so small fields stay crisp)."""
    cells = []
    for patch in patches:
        image = Image.fromarray(np.asarray(patch, dtype=np.uint8)).convert("RGB")
        scale = size / max(image.size)
        shape = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
        cells.append(np.asarray(image.resize(shape, resample)))
    return strip(cells)


def describe_field(field: Field | None) -> str:
    """The field a layer's patches are cut at, in words for figure titles and unit captions: exact,
    local (and which global gates it treats as per-channel scales), token or global."""
    if field is None:
        return "global receptive field: patches are whole images"
    if field.kind == "token":
        return f"tokens see the whole image: patches are each token's own {field.size[0]}x{field.size[1]} px patch"
    size = f"{field.size[0]}x{field.size[1]} px, stride {field.jump[0]}"
    if field.kind == "local":
        return f"local receptive field {size} ({field.reason}; the gates themselves see the whole image)"
    return f"receptive field {size}"


def layer_grid(
    patches: list[list[np.ndarray]], channels: Sequence[int], title: str, cell_inches: float = 0.6
) -> plt.Figure:
    """Rows are channels, labelled on their left (where a label cannot run into the row
    above), columns the K best patches."""
    k = len(patches[0])
    flat = [p for row in patches for p in row]
    return image_grid(flat, ncols=k, row_labels=[f"ch {c}" for c in channels], cell_inches=cell_inches,
                      suptitle=_wrapped(title), value_range=(0, 255))


def channel_grid(
    patches: list[np.ndarray], values: np.ndarray, labels: Sequence[str], title: str, cell_inches: float = 1.0
) -> plt.Figure:
    """One channel's K patches, titled with activation value and image label."""
    ncols = min(len(patches), 12)
    titles = [f"{v:.3g} | {lab}"[:22] for v, lab in zip(values, labels)]
    return image_grid(list(patches), ncols=ncols, titles=titles, cell_inches=cell_inches, suptitle=_wrapped(title),
                      value_range=(0, 255))


def _wrapped(title: str) -> str:
    return "\n".join(textwrap.fill(line, TITLE_CHARS) for line in title.split("\n"))
