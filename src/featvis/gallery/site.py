"""The gallery's index page, its model pages, and its local assets (stylesheet, script)."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from featvis.core.io import copy_file, write_bytes, write_text
from featvis.gallery.html import esc, figure, note, page, section, table


def write_assets(out: str | os.PathLike) -> None:
    """The stylesheet and script every page loads, from the package (no CDN, no web fonts)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("gallery.css", "gallery.js", "embedmap.js"):
        write_bytes(out / name, resources.files("featvis.gallery").joinpath("static", name).read_bytes())


def _copy(src: str | os.PathLike, dest: Path) -> str:
    copy_file(src, dest)
    return dest.name


def build_model(out: str | os.PathLike, model: str, spec: Mapping, layers: Sequence[str], layer_table: str | None,
                figures: Sequence[tuple[str, str]]) -> None:
    """``out/index.html``: the analysed layers (linked), the layer table (type, shape, receptive field),
    and the model's figures (filters, class maps, render figures) as (title, path)."""
    out = Path(out)
    links = "".join(f'<li><a href="{esc(layer)}/index.html">{esc(layer)}</a></li>' for layer in layers)
    body = f"<p>architecture <code>{esc(spec.get('architecture', ''))}</code></p>"
    body += section("Layers with unit pages", f'<ul class="cards">{links}</ul>' if layers else note("None."))
    shown = []
    for title, path in figures:
        name = _copy(path, out / "figures" / _flat(path))
        shown.append(figure(f"figures/{esc(name)}", esc(title)))
    if shown:
        body += section("Figures", "\n".join(shown), "figures")
    if layer_table:
        body += section("Layer table", _layer_table(layer_table, set(layers)), "layers")
    page_html = page(model, body, "../", [("index", "../index.html"), (model, None)])
    write_text(out / "index.html", page_html)


def _flat(path: str | os.PathLike) -> str:
    """A results path as one file name: results/weights/m/filters.png -> weights.m.filters.png."""
    parts = Path(path).parts
    return ".".join(parts[1:] if parts[0] == "results" else parts)


def _layer_table(path: str, linked: set[str]) -> str:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    header, rows = rows[0], rows[1:]
    cells = []
    for row in rows:
        name = row[0]
        first = f'<a href="{esc(name)}/index.html">{esc(name)}</a>' if name in linked else esc(name)
        cells.append("<tr><td>" + first + "</td>" + "".join(f"<td>{esc(v)}</td>" for v in row[1:]) + "</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(cells)}</tbody></table>"


def build_index(out: str | os.PathLike, models: Mapping[str, Sequence[str]], datasets: Mapping[str, Mapping],
                proteins: str | None = None, protein_count: int = 0,
                featured: Sequence[tuple[str, str, int]] = ()) -> None:
    """``out/index.html``: featured units, models (with their layers), datasets, the protein reports."""
    out = Path(out)
    tiles = []
    for model, layer, c in featured:
        base = f"{esc(model)}/{esc(layer)}"
        thumb = out / model / layer / "thumbs" / f"{c:04d}.jpg"
        image = (f'<img src="{base}/thumbs/{c:04d}.jpg" alt="unit {c}" width="80" height="80">' if thumb.exists()
                 else '<span class="blank">no picture</span>')
        tiles.append(f'<a class="tile" href="{base}/{c}.html">{image}{esc(model)} {esc(layer)} {c}</a>')
    cards = "".join(
        f'<li><a href="{esc(m)}/index.html"><strong>{esc(m)}</strong></a><br>'
        + ", ".join(f'<a href="{esc(m)}/{esc(layer)}/index.html">{esc(layer)}</a>' for layer in layers)
        + "</li>"
        for m, layers in models.items()
    )
    body = section("Featured units", f'<div class="tiles">{"".join(tiles)}</div>') if tiles else ""
    body += section("Models", f'<ul class="cards">{cards}</ul>' if models else note("No vision models in this run."))
    if datasets:
        rows = [(name, d.get("images", "?"), d.get("source", "")) for name, d in datasets.items()]
        body += section("Datasets", table(["dataset", "images", "source"], rows))
    if proteins:
        body += section("Protein reports", f'<p><a href="{esc(proteins)}">{protein_count} protein report(s)</a>: '
                        "per-residue importance, wild type against variant.</p>")
    write_text(out / "index.html", page("Gallery", body, "", [("index", None)]))
