"""A layer's pages: the layer page (a sortable tile per channel, the layer's figures) and one
page per unit (renders, dataset patches, projections, the activation histogram, the trace)."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from featvis.core.io import link_or_copy, read_json, save_image, write_text
from featvis.core.units import JPEG_QUALITY, UNIT_FILE, UNITS_ROOT, unit_stem
from featvis.gallery import accent_panel, charts, concepts, trust_panel
from featvis.gallery.html import esc, figure, note, page, section

THUMB_PX = 80
# How a producer folder is titled on a unit page, and the order of sections.
STAGE_TITLES = {"render": "Feature visualization", "patches_max": "Top dataset patches",
                "patches_min": "Bottom dataset patches", "deconvnet": "DeconvNet projections",
                "guided_backprop": "Guided-backprop projections"}


@dataclass(frozen=True)
class Picture:
    """One unit picture found in the unit tree, and where the gallery keeps its copy."""

    stage: str
    source: str
    kind: str
    path: Path
    caption: dict | None

    @property
    def copy_name(self) -> str:
        return f"{self.stage}.{self.source}.{self.path.name}"


@dataclass
class LayerData:
    model: str
    layer: str
    channels: list[int]  # units with a page, ascending
    maxima: dict[str, np.ndarray]  # dataset -> (N images, C) per-image channel maxima
    pictures: dict[int, list[Picture]] = field(default_factory=dict)
    concepts: dict[int, list[tuple[str, int, float]]] = field(default_factory=dict)  # unit -> concepts it loads on


def find_pictures(results: str | os.PathLike, model: str, layer: str,
                  producers: Sequence[str] | None = None) -> dict[int, list[Picture]]:
    """Every unit picture of the layer, grouped by channel, in a stable order. ``producers`` (the
    run's own producer folders) keeps out what an earlier run with another config left behind."""
    root = Path(results) / UNITS_ROOT / model / layer
    keep = None if producers is None else {Path(p).resolve() for p in producers}
    found: dict[int, list[Picture]] = defaultdict(list)
    for path in sorted(root.glob("*/*/*")):
        if keep is not None and path.parent.resolve() not in keep or path.parent.parent.name == concepts.STAGE:
            continue  # another run's leftovers; concept pictures are not unit pictures (gallery.concepts)
        match = UNIT_FILE.match(path.name)
        if not match:
            continue
        sidecar = path.with_suffix(".json")
        caption = read_json(sidecar) if sidecar.exists() else None
        found[int(match.group(1))].append(Picture(path.parent.parent.name, path.parent.name, match.group(2),
                                                  path, caption))
    order = {stage: i for i, stage in enumerate(STAGE_TITLES)}
    return {c: sorted(p, key=lambda p: (order.get(p.stage, len(order)), p.stage, p.source, p.kind))
            for c, p in sorted(found.items())}


def load_layer(results: str | os.PathLike, model: str, layer: str, maxima_files: Mapping[str, str],
               producers: Sequence[str] | None = None) -> LayerData:
    """The layer's pictures and per-dataset maxima. An analysed layer gives every channel a page
    (its width read from the maxima); a layer that was only rendered, its rendered channels."""
    maxima = {name: np.load(path, mmap_mode="r") for name, path in sorted(maxima_files.items())}
    pictures = find_pictures(results, model, layer, producers)
    width = max((m.shape[1] for m in maxima.values()), default=0)
    channels = sorted(set(range(width)) | set(pictures))
    return LayerData(model, layer, channels, maxima, pictures)


def render_ratio(pictures: Sequence[Picture]) -> float | None:
    """The first render's activation relative to the dataset maximum, when it was measured."""
    for p in pictures:
        if p.stage == "render" and p.caption and p.caption.get("relative_to_dataset_max") is not None:
            return float(p.caption["relative_to_dataset_max"])
    return None


def _thumbnail(pictures: Sequence[Picture]) -> Image.Image | None:
    """The unit's render, else its best patch (the first cell of the top-patch strip)."""
    for stage in ("render", "patches_max", "patches_min"):
        picture = next((p for p in pictures if p.stage == stage), None)
        if picture is None:
            continue
        image = Image.open(picture.path).convert("RGB")
        if stage != "render":
            image = image.crop((0, 0, min(image.height, image.width), image.height))
        return image.resize((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
    return None


def _copy(src: Path, dest: Path) -> None:
    """A hard link where the file system allows (no second copy of thousands of pictures; the
    gallery still stands alone), else a copy."""
    link_or_copy(src, dest)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


def build_layer(out: str | os.PathLike, results: str | os.PathLike, model: str, layer: str,
                maxima_files: Mapping[str, str], figures: Sequence[str], description: str = "",
                producers: Sequence[str] | None = None, maps: Mapping[str, str] | None = None,
                concepts_quality: str | None = None) -> int:
    """Write ``out/index.html``, ``out/<channel>.html`` for every unit, ``out/img``, ``out/thumbs``
    and ``out/figures``; with ``maps`` ({dataset: the embed stage's coordinates.csv}), an interactive
    embedding map per dataset (featvis.gallery.embedmap); with ``concepts_quality`` (the layer's
    concepts JSON), ``out/concepts``. Returns the number of unit pages."""
    out = Path(out)
    data = load_layer(results, model, layer, maxima_files, producers)
    if concepts_quality:
        concepts.build_concepts(out, results, model, layer, concepts_quality)
        data.concepts = concepts.unit_concepts(results, model, layer)
    for pictures in data.pictures.values():
        for p in pictures:
            _copy(p.path, out / "img" / p.copy_name)
        accent_panel.write_alpha_images(out / "img", pictures)
    dataset_max = {name: np.asarray(np.nanmax(m, axis=0), dtype=np.float64) for name, m in data.maxima.items()}
    trust = trust_panel.find_records(results, model, layer, producers)
    tiles = []
    for c in data.channels:
        pictures = data.pictures.get(c, [])
        thumb = _thumbnail(pictures)
        if thumb is not None:
            save_image(out / "thumbs" / f"{unit_stem(c)}.jpg", thumb, format="JPEG", quality=JPEG_QUALITY)
        tiles.append(_tile(c, thumb is not None, dataset_max, render_ratio(pictures),
                           trust_panel.unit_score(trust.get(c, []))))
        write_text(out / f"{c}.html", _unit_page(data, c, pictures, dataset_max, trust.get(c, [])))
    figure_html = []
    for path in figures:
        name = _figure_name(Path(path), results)
        _copy(Path(path), out / "figures" / name)
        figure_html.append(figure(f"figures/{name}", esc(name.removesuffix(".png").replace(".", " · "))))
    map_links = _embedding_maps(out, model, layer, maps or {})
    write_text(out / "index.html", _layer_page(data, tiles, figure_html, description,
                                               map_links + concepts.layer_links(concepts_quality)))
    return len(data.channels)


def _embedding_maps(out: Path, model: str, layer: str, maps: Mapping[str, str]) -> str:
    """The interactive maps of the layer, one per dataset, and the section that links them."""
    from featvis.gallery.embedmap import build_map

    links = [f'<li><a href="{esc(build_map(out, model, layer, dataset, path))}">{esc(dataset)}</a></li>'
             for dataset, path in sorted(maps.items())]
    if not links:
        return ""
    return section("Embedding maps", "<p>PCA, t-SNE and UMAP maps of the images by their pooled features "
                   "at this layer, to hover, zoom and pan:</p>" + f'<ul class="cards">{"".join(links)}</ul>', "maps")


def _figure_name(path: Path, results: str | os.PathLike) -> str:
    """A layer figure's name from its place in results: <stage>.<dataset or job>.<file>."""
    parts = path.relative_to(results).parts
    if parts[0] == "render":  # render/<model>/<layer>/<job>/<file>
        return ".".join([parts[0], parts[-2], parts[-1]])
    return ".".join([parts[0], *parts[2:-2], parts[-1]])  # <stage>/<model>/<dataset>/<layer>/<file>


def _tile(c: int, has_thumb: bool, dataset_max: Mapping[str, np.ndarray], ratio: float | None,
          score: float | None = None) -> str:
    top = max((float(m[c]) for m in dataset_max.values()), default=float("nan"))
    image = (f'<img src="thumbs/{unit_stem(c)}.jpg" alt="channel {c}" loading="lazy" width="{THUMB_PX}" '
             f'height="{THUMB_PX}">' if has_thumb else '<span class="blank">no picture</span>')
    return (f'<a class="tile" href="{c}.html" data-channel="{c}" data-max="{_fmt(top, 6)}" '
            f'data-ratio="{_fmt(ratio, 6)}" data-score="{_fmt(score, 6)}">{image}{c}</a>')


def _layer_page(data: LayerData, tiles: list[str], figure_html: list[str], description: str,
                map_links: str = "") -> str:
    sorter = ('<p class="controls"><label>Sort units by <select id="sort">'
              '<option value="channel">channel number</option>'
              '<option value="max">dataset maximum (largest first)</option>'
              '<option value="ratio">render / dataset maximum (largest first)</option>'
              '<option value="score">path-check score (highest first)</option>'
              '</select></label></p>')
    body = (f"<p>{esc(description)}</p>" if description else "") + _field_line(data) + section(
        f"{len(data.channels)} units", sorter + f'<div class="tiles" id="tiles">{"".join(tiles)}</div>', "units")
    body += map_links
    if figure_html:
        body += section("Layer figures", "\n".join(figure_html), "figures")
    crumbs = [("index", "../../index.html"), (data.model, "../index.html"), (data.layer, None)]
    return page(f"{data.model} · {data.layer}", body, "../../", crumbs, script=True)


def _field_line(data: LayerData) -> str:
    """The receptive field the layer's patches are cut at (exact, local and why, token, or global),
    as its patch captions give it."""
    for pictures in data.pictures.values():
        for p in pictures:
            if p.stage != "render" and p.caption and p.caption.get("field"):
                return f'<p class="field">Receptive field of the patches: {esc(p.caption["field"])}</p>'
    return ""


def _unit_page(data: LayerData, c: int, pictures: Sequence[Picture], dataset_max: Mapping[str, np.ndarray],
               trust: Sequence[dict] = ()) -> str:
    at = data.channels.index(c)
    pager = ['<p class="pager">']
    if at > 0:
        pager.append(f'<a href="{data.channels[at - 1]}.html" rel="prev">&larr; unit {data.channels[at - 1]}</a>')
    pager.append(f'<a href="index.html" rel="up">all {len(data.channels)} units of {esc(data.layer)}</a>')
    if at + 1 < len(data.channels):
        pager.append(f'<a href="{data.channels[at + 1]}.html" rel="next">unit {data.channels[at + 1]} &rarr;</a>')
    body = "".join(pager) + "</p>"
    body += _render_section(pictures, dataset_max, c)
    body += accent_panel.accent_section(pictures, c)
    body += trust_panel.panel(trust, any(p.stage == "render" for p in pictures))
    body += _dataset_sections(data, pictures, dataset_max, c)
    body += concepts.unit_section(data.concepts.get(c, []))
    crumbs = [("index", "../../index.html"), (data.model, "../index.html"), (data.layer, "index.html"), (str(c), None)]
    return page(f"{data.model} · {data.layer} · unit {c}", body, "../../", crumbs)


def _render_section(pictures: Sequence[Picture], dataset_max: Mapping[str, np.ndarray], c: int) -> str:
    renders = [p for p in pictures if p.stage == "render"]
    if not renders:
        return section("Feature visualization", note("Not rendered: no render job covers this unit "
                                                     "(add it to render.jobs to see what maximises it)."))
    cells, traces = [], []
    for p in renders:
        cap = p.caption or {}
        ratio = cap.get("relative_to_dataset_max")
        words = f"{esc(p.source)}, {esc(p.kind)}"
        if ratio is not None:
            words += f"; activation {_fmt(ratio)}&times; the dataset maximum"
        cells.append(accent_panel.render_figure(p, words, f"render of unit {c}"))
        if cap.get("objective") and p.kind == "copy0":
            traces.append(f"<figure>{charts.trace(cap['objective'])}<figcaption>optimisation trace "
                          f"({esc(p.source)}): objective per step</figcaption></figure>")
    return section("Feature visualization", "\n".join(cells + traces), "render")


def _dataset_sections(data: LayerData, pictures: Sequence[Picture], dataset_max: Mapping[str, np.ndarray],
                      c: int) -> str:
    pictures = [p for p in pictures if p.stage != accent_panel.ACCENT_STAGE]  # its own panel
    datasets = sorted(set(data.maxima) | {p.source for p in pictures if p.stage != "render"})
    if not datasets:
        return section("Dataset examples", note("This layer was not analysed on a dataset (analyses)."))
    render = next((p.caption for p in pictures if p.stage == "render" and p.caption), None)
    html = []
    for name in datasets:
        parts = []
        for p in (p for p in pictures if p.stage != "render" and p.source == name):
            parts.append(_strip(p))
        if not any(p.stage == "patches_max" and p.source == name for p in pictures):
            parts.insert(0, note(f"No top patches for this unit on {name}: the patches stage did not run "
                                 f"on this layer (patches view of the analysis)."))
        elif not any(p.stage == "patches_min" and p.source == name for p in pictures):
            parts.append(note("No bottom patches: set patches.negative: true to show the minimally "
                              "activating images too."))
        if name in data.maxima:
            values = np.asarray(data.maxima[name][:, c], dtype=np.float64)
            marker = render.get("final_max_activation") if render else None
            chart = charts.histogram(values, marker=marker, marker_label="render",
                                     xlabel="maximum activation per image")
            parts.append(f"<figure>{chart}"
                         f"<figcaption>The unit's maximum activation on each of {len(values)} images; "
                         f"dataset maximum {_fmt(float(dataset_max[name][c]))}"
                         + ("; red: the render's activation" if marker is not None else "")
                         + "</figcaption></figure>")
        html.append(section(f"Dataset: {name}", "\n".join(parts), f"dataset-{name}"))
    return "".join(html)


def _strip(p: Picture) -> str:
    """A strip of patches or projections, captioned image by image from its JSON."""
    cap = p.caption or {}
    title = STAGE_TITLES.get(p.stage, p.stage)
    labels = ""
    if cap.get("values"):
        names = cap.get("labels") or [""] * len(cap["values"])
        labels = '<ol class="labels">' + "".join(
            f"<li>{esc(name)} ({_fmt(v)})</li>" for v, name in zip(cap["values"], names)) + "</ol>"
    words = f"{esc(title)}: {esc(cap.get('title', ''))}. {esc(cap.get('field', ''))}"
    return (f'<figure class="strip"><img src="img/{esc(p.copy_name)}" alt="{esc(title)}" loading="lazy">'
            f"<figcaption>{words}{labels}</figcaption></figure>")
