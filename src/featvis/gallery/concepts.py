"""A layer's concept pages: per method, an index (a tile per live concept, sortable by frequency and
stability, and the layer's quality numbers each with how to read it) and a page per concept (top
patches, heatmap, render of its direction, the units that load on it, the classes where it is most
present, prev/next links). Unit pages list the concepts a unit loads on (:func:`unit_concepts`).

Reads the concepts stage's files: ``units/<model>/<layer>/concepts/<method>/<cccc>.*`` and the
layer's quality JSON.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image

from featvis.core.io import link_or_copy, read_json, save_image, write_text
from featvis.core.units import JPEG_QUALITY, UNIT_FILE, UNITS_ROOT, unit_stem
from featvis.gallery.html import esc, figure, note, page, section, table

STAGE = "concepts"
THUMB_PX = 80
ROOT = "../../../../"  # from gallery/<model>/<layer>/concepts/<method>/ to the gallery root
QUALITY_ROWS = (("r2", "reconstruction R²"), ("l0", "L0 (active concepts per position)"),
                ("dead_fraction", "dead fraction"), ("stability", "stability (two seeds, matched cosine)"))


def concept_files(results: str | os.PathLike, model: str, layer: str, method: str) -> dict[int, dict[str, Path]]:
    """{concept: {kind: picture}} of one method's live concepts."""
    found: dict[int, dict[str, Path]] = defaultdict(dict)
    for path in sorted((Path(results) / UNITS_ROOT / model / layer / STAGE / method).glob("*")):
        if match := UNIT_FILE.match(path.name):
            found[int(match.group(1))][match.group(2)] = path
    return dict(sorted(found.items()))


def _caption(path: Path) -> dict:
    sidecar = path.with_suffix(".json")
    return read_json(sidecar) if sidecar.exists() else {}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def build_concepts(out: str | os.PathLike, results: str | os.PathLike, model: str, layer: str,
                   quality_path: str | os.PathLike) -> int:
    """``out/concepts/<method>/`` pages for every method in the quality JSON; returns the concept pages."""
    quality = read_json(quality_path)
    pages = 0
    methods = list(quality["methods"])
    for method, record in quality["methods"].items():
        folder = Path(out) / STAGE / method
        files = concept_files(results, model, layer, method)
        live = list(files)
        tiles = []
        for c in live:
            for path in files[c].values():
                link_or_copy(path, folder / "img" / path.name)
            thumb = _thumb(files[c])
            save_image(folder / "thumbs" / f"{unit_stem(c)}.jpg", thumb, format="JPEG", quality=JPEG_QUALITY)
            tiles.append(_tile(c, record))
            write_text(folder / f"{c}.html", _concept_page(model, layer, method, record, c, live, files[c]))
            pages += 1
        write_text(folder / "index.html", _index_page(model, layer, method, record, tiles, methods))
    return pages


def _thumb(files: Mapping[str, Path]) -> Image.Image:
    """The concept's render, else its best patch."""
    if "render" in files:
        image = Image.open(files["render"]).convert("RGB")
    else:
        image = Image.open(files["patches"]).convert("RGB")
        image = image.crop((0, 0, min(image.height, image.width), image.height))
    return image.resize((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)


def _tile(c: int, record: Mapping) -> str:
    frequency, stability = record["frequency"][c], record["stability_per_concept"][c]
    return (f'<a class="tile" href="{c}.html" data-channel="{c}" data-frequency="{_fmt(frequency, 6)}" '
            f'data-stability="{_fmt(stability, 6)}"><img src="thumbs/{unit_stem(c)}.jpg" alt="concept {c}" '
            f'loading="lazy" width="{THUMB_PX}" height="{THUMB_PX}">{c}</a>')


def quality_table(record: Mapping) -> str:
    """The layer's numbers, each with the sentence that says how to read it."""
    rows = "".join(f"<tr><th>{esc(name)}</th><td>{_fmt(record[key])}</td><td>{esc(record['how_to_read'][key])}</td>"
                   "</tr>" for key, name in QUALITY_ROWS)
    sample = record["sample"]
    words = (f"Fitted on {sample['positions_fitted']} positions: {sample['positions_per_image']} per image of "
             f"{sample['images']} images (grid {sample['grid'][0]}x{sample['grid'][1]}), at most {sample['budget']}; "
             f"codes over all {record['positions_encoded']} positions. "
             + record["how_to_read"]["frequency"])
    return f"<table>{rows}</table><p>{esc(words)}</p>"


def _index_page(model: str, layer: str, method: str, record: Mapping, tiles: Sequence[str],
                methods: Sequence[str]) -> str:
    sorter = ('<p class="controls"><label>Sort concepts by <select id="sort">'
              '<option value="channel">concept number</option>'
              '<option value="frequency">frequency (most frequent first)</option>'
              '<option value="stability">stability (most stable first)</option>'
              '</select></label></p>')
    others = [m for m in methods if m != method]
    body = ("<p>" + ", ".join(f'<a href="../{esc(m)}/index.html">{esc(m)} concepts</a>' for m in others) + "</p>"
            if others else "")
    body += section("Quality", quality_table(record), "quality")
    dead = len(record["dead"])
    tile_html = f'<div class="tiles" id="tiles">{"".join(tiles)}</div>' if tiles else note("No concept fires.")
    if dead:
        tile_html += note(f"{dead} dead concept(s) (never active on the dataset) have no page: "
                          + ", ".join(map(str, record["dead"])))
    body += section(f"{len(tiles)} concepts", sorter + tile_html, "concepts")
    crumbs = [("index", f"{ROOT}index.html"), (model, "../../../index.html"), (layer, "../../index.html"),
              (f"{method} concepts", None)]
    return page(f"{model} · {layer} · {method} concepts", body, ROOT, crumbs, script=True)


def _concept_page(model: str, layer: str, method: str, record: Mapping, c: int, live: Sequence[int],
                  files: Mapping[str, Path]) -> str:
    at = live.index(c)
    pager = ['<p class="pager">']
    if at > 0:
        pager.append(f'<a href="{live[at - 1]}.html" rel="prev">&larr; concept {live[at - 1]}</a>')
    pager.append(f'<a href="index.html" rel="up">all {len(live)} {esc(method)} concepts of {esc(layer)}</a>')
    if at + 1 < len(live):
        pager.append(f'<a href="{live[at + 1]}.html" rel="next">concept {live[at + 1]} &rarr;</a>')
    cap = _caption(files["patches"]) if "patches" in files else {}
    body = "".join(pager) + "</p>"
    body += (f"<p>Active at {_fmt(100 * record['frequency'][c])}% of positions; stability (matched cosine to the "
             f"second seed's closest concept) {_fmt(record['stability_per_concept'][c])}.</p>")
    if "render" in files:
        body += section("Render of the concept direction", figure(f"img/{files['render'].name}",
                        "the direction objective: the image that most increases the concept direction",
                        f"render of concept {c}", cls="render"), "render")
    if "patches" in files:
        named = zip(cap.get("values", []), cap.get("labels", []))
        labels = '<ol class="labels">' + "".join(f"<li>{esc(name)} ({_fmt(v)})</li>" for v, name in named) + "</ol>"
        body += section("Top dataset patches", f'<figure class="strip"><img src="img/{files["patches"].name}" '
                        f'alt="top patches of concept {c}" loading="lazy"><figcaption>{esc(cap.get("title", ""))}. '
                        f'{esc(cap.get("field", ""))}{labels}</figcaption></figure>', "patches")
    if "heatmap" in files:
        body += section("Heatmap", f'<figure class="strip"><img src="img/{files["heatmap"].name}" '
                        f'alt="heatmap of concept {c}" loading="lazy"><figcaption>'
                        f'{esc(_caption(files["heatmap"]).get("title", ""))}</figcaption></figure>', "heatmap")
    units = [(f'<a href="../../{int(u)}.html">unit {int(u)}</a>', _fmt(w)) for u, w in cap.get("units", [])]
    if units:
        rows = "".join(f"<tr><td>{link}</td><td>{esc(w)}</td></tr>" for link, w in units)
        body += section("Units that load most", "<table><thead><tr><th>unit</th><th>weight in the direction</th>"
                        f"</tr></thead><tbody>{rows}</tbody></table>", "units")
    if cap.get("classes"):
        body += section("Classes where it is most present", table(
            ["class", "mean maximum over the class's images / mean over classes"],
            [(name, _fmt(v)) for name, v in cap["classes"]]), "classes")
    crumbs = [("index", f"{ROOT}index.html"), (model, "../../../index.html"), (layer, "../../index.html"),
              (f"{method} concepts", "index.html"), (str(c), None)]
    return page(f"{model} · {layer} · {method} concept {c}", body, ROOT, crumbs)


def unit_concepts(results: str | os.PathLike, model: str, layer: str) -> dict[int, list[tuple[str, int, float]]]:
    """{unit: [(method, concept, weight)]}: the concepts each unit is among the top loaders of."""
    found: dict[int, list[tuple[str, int, float]]] = defaultdict(list)
    root = Path(results) / UNITS_ROOT / model / layer / STAGE
    for path in sorted(root.glob("*/*.patches.json")):
        concept = int(path.name.split(".")[0])
        for unit, weight in read_json(path).get("units", []):
            found[int(unit)].append((path.parent.name, concept, float(weight)))
    return dict(found)


def unit_section(entries: Sequence[tuple[str, int, float]]) -> str:
    """The unit page's list of the concepts it loads on, linked."""
    if not entries:
        return ""
    items = "".join(f'<li><a href="concepts/{esc(m)}/{c}.html">{esc(m)} concept {c}</a> (weight {_fmt(w)})</li>'
                    for m, c, w in sorted(entries, key=lambda e: -abs(e[2])))
    return section("Concepts this unit loads on", f"<ul>{items}</ul>", "concepts")


def layer_links(quality_path: str | os.PathLike | None) -> str:
    """The layer page's links to its concept indexes."""
    if not quality_path:
        return ""
    methods = read_json(quality_path)["methods"]
    items = "".join(f'<li><a href="concepts/{esc(m)}/index.html">{esc(m)}</a>: R² {_fmt(r["r2"])}, '
                    f'stability {_fmt(r["stability"])}, {r["n_concepts"] - len(r["dead"])} live concepts</li>'
                    for m, r in methods.items())
    return section("Concepts", f"<ul>{items}</ul>", "concept-links")
