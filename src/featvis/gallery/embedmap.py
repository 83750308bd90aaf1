"""An interactive map of a layer's embeddings: the embed stage's PCA / t-SNE / UMAP coordinates
drawn on a canvas you can pan, zoom and hover (each image's thumbnail and label), coloured by class.

Written per (layer, dataset) beside the layer page, as three files: ``map_<dataset>.html``,
``map_<dataset>.data.js`` (the coordinates, labels and names; a script, not JSON, because a
page opened from ``file://`` may not fetch files) and ``map_<dataset>.jpg`` (every image's
thumbnail in one sprite, cell ``i`` for row ``i`` of the coordinates table). The drawing is
``assets/embedmap.js``, shipped with the package: no library, no CDN.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from featvis.core.io import save_image, write_text
from featvis.gallery.html import esc, note, page

THUMB_CELL_PX = 32  # a sprite cell: 10,000 images make a 3,200 px square JPEG
SPRITE_QUALITY = 85
METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def map_methods(table: pd.DataFrame) -> list[str]:
    """Methods with both coordinates in a coordinates.csv (``<method>_1``, ``<method>_2``)."""
    return [c.removesuffix("_1") for c in table.columns if c.endswith("_1") and f"{c[:-2]}_2" in table.columns]


def map_data(table: pd.DataFrame, sprite: str, cell_px: int, columns: int) -> dict:
    """What the page script reads: per method a flat [x0, y0, x1, y1, ...] list (6 significant
    digits), a class index per point, the class names, and each image's short name."""
    classes = sorted({str(label) for label in table["label"]}, key=_natural)
    index = {name: i for i, name in enumerate(classes)}
    coords = {}
    for method in map_methods(table):
        xy = table[[f"{method}_1", f"{method}_2"]].to_numpy(dtype=np.float64)
        coords[method] = [float(f"{v:.6g}") if math.isfinite(v) else None for v in xy.ravel()]
    return {"methods": list(coords), "titles": {m: METHOD_TITLES.get(m, m) for m in coords}, "coords": coords,
            "labels": [index[str(label)] for label in table["label"]], "classes": classes,
            "names": [_short(path) for path in table["path"]], "sprite": sprite, "cell": cell_px,
            "columns": columns}


def _natural(name: str) -> list[tuple[int, int, str]]:
    """Numbers in names by value: '2' before '10', 'class2' before 'class10'."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part]


def _short(path: str) -> str:
    """``<class folder>/<file>``: enough to find the image, short enough for a tooltip."""
    parts = Path(str(path)).parts
    return "/".join(parts[-2:])


def thumbnail_sprite(paths: Sequence[str], thumbnail: Callable[[str], np.ndarray],
                     cell_px: int = THUMB_CELL_PX) -> tuple[Image.Image, int]:
    """Every image's thumbnail in one RGB picture, row-major, ``columns`` cells a row."""
    columns = max(1, math.ceil(math.sqrt(len(paths))))
    rows = max(1, math.ceil(len(paths) / columns))
    sprite = Image.new("RGB", (columns * cell_px, rows * cell_px), (128, 128, 128))
    for i, path in enumerate(paths):
        cell = Image.fromarray(np.asarray(thumbnail(path))).convert("RGB")
        if cell.size != (cell_px, cell_px):
            cell = cell.resize((cell_px, cell_px), Image.Resampling.BILINEAR)
        sprite.paste(cell, ((i % columns) * cell_px, (i // columns) * cell_px))
    return sprite, columns


def default_thumbnail(cell_px: int = THUMB_CELL_PX) -> Callable[[str], np.ndarray]:
    """An image as the gallery shows it: transparency on mid grey, centre-cropped to a square."""
    from featvis.vision.data import display_image

    return lambda path: display_image(path, cell_px)


def build_map(out: str | os.PathLike, model: str, layer: str, dataset: str, coordinates: str | os.PathLike,
              thumbnail: Callable[[str], np.ndarray] | None = None, cell_px: int = THUMB_CELL_PX) -> str:
    """Write the map of one layer on one dataset into the layer's folder ``out``; return the page's
    file name (``map_<dataset>.html``)."""
    out = Path(out)
    table = pd.read_csv(coordinates, keep_default_na=False)
    stem = f"map_{dataset}"
    sprite, columns = thumbnail_sprite(list(table["path"]), thumbnail or default_thumbnail(cell_px), cell_px)
    save_image(out / f"{stem}.jpg", sprite, format="JPEG", quality=SPRITE_QUALITY)
    data = map_data(table, f"{stem}.jpg", cell_px, columns)
    write_text(out / f"{stem}.data.js", f"window.FEATVIS_MAP = {json.dumps(data, separators=(',', ':'))};\n")
    write_text(out / f"{stem}.html", _map_page(model, layer, dataset, stem, data))
    return f"{stem}.html"


def _map_page(model: str, layer: str, dataset: str, stem: str, data: dict) -> str:
    buttons = "".join(f'<button type="button" data-method="{esc(m)}">{esc(data["titles"][m])}</button>'
                      for m in data["methods"])
    legend = "".join(f'<li data-class="{i}"><span class="swatch"></span>{esc(name)}</li>'
                     for i, name in enumerate(data["classes"]))
    body = (
        f"<p>{len(data['labels'])} images of <code>{esc(dataset)}</code>, placed by their pooled features at "
        f"<code>{esc(layer)}</code>. Hover a point for its image and label; drag to pan, scroll to zoom "
        "(double-click resets); click a class to hide it.</p>"
        + (note("No coordinates: the embed stage made no method for this layer.") if not data["methods"] else "")
        + f'<p class="controls map-methods">{buttons} <button type="button" id="map-reset">reset view</button></p>'
        + '<div class="map-frame"><canvas id="map" width="900" height="640" '
        + 'aria-label="embedding map; hover a point for its image"></canvas>'
        + '<div id="map-tip" hidden><canvas id="map-thumb" width="96" height="96"></canvas>'
        + '<span id="map-label"></span></div></div>'
        + f'<ul class="map-legend" id="map-legend">{legend}</ul>'
        + f'<script src="{esc(stem)}.data.js"></script><script src="../../assets/embedmap.js"></script>'
    )
    crumbs = [("index", "../../index.html"), (model, "../index.html"), (layer, "index.html"),
              (f"map of {dataset}", None)]
    return page(f"{model} · {layer} · map of {dataset}", body, "../../", crumbs)
