"""An offline, self-contained 3D view (one HTML file; its JavaScript is inlined, nothing is fetched)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import numpy as np

from featvis.core.io import write_text
from featvis.protein.structure import Residue

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; color: #222; }}
#view {{ border: 1px solid #ccc; width: 720px; height: 560px; cursor: grab; }}
#legend {{ margin: 0.4em 0; }} #legend span {{ vertical-align: middle; margin-right: 0.4em; }}
#legend .bar {{ display: inline-block; width: 220px; height: 12px; border: 1px solid #999; }}
.note, .reading {{ color: #444; font-size: 0.9em; }} #tip {{ font-family: monospace; }}
</style></head>
<body>
<h2>{title}</h2>
<p class="reading">{reading}</p>
<label>Colour by: <select id="track"></select></label>
<div id="legend"></div>
<canvas id="view" width="720" height="560"></canvas>
<div id="tip">&nbsp;</div>
<p class="note">Drag to rotate, scroll to zoom, point at a residue to read its score. Each ball is one residue
(its C-alpha atom); the variant is the large ball with a green ring. {extra}</p>
<script>
const DATA = {data};
{script}
</script>
</body></html>
"""


def viewer_html(
    residues: list[Residue],
    mapping: list[int],
    tracks: dict[str, tuple[np.ndarray, bool, str]],
    variant_index: int | None,
    variant_label: str,
    title: str,
    reading: str,
    extra: str = "",
) -> str:
    """HTML text of the viewer. ``tracks``: name -> (values per sequence position, diverging, note)."""
    placed = [(r, j) for r, j in zip(residues, mapping, strict=True) if r.ca is not None]
    if not placed:
        raise ValueError("the structure has no C-alpha atoms to draw")
    shown = [j for _, j in placed]
    variant = shown.index(variant_index) if variant_index in shown else None
    data = {
        "residues": [{"label": f"{r.name}{j + 1} ({r.label})", "xyz": [round(c, 3) for c in r.ca]} for r, j in placed],
        "tracks": {
            name: {"values": [round(float(values[j]), 5) for j in shown], "diverging": div, "note": note}
            for name, (values, div, note) in tracks.items()
        },
        "variant": variant,
        "variant_label": variant_label,
    }
    script = (Path(__file__).with_name("viewer.js")).read_text()
    return _PAGE.format(
        title=html.escape(title),
        reading=html.escape(reading),
        extra=html.escape(extra),
        data=json.dumps(data).replace("</", "<\\/"),
        script=script,
    )


def write_viewer(path: str | os.PathLike, **kwargs) -> None:
    write_text(path, viewer_html(**kwargs))
