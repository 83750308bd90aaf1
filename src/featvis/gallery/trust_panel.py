"""A unit page's trust panel: can its render be believed? (the trust stage's records, docs/trust.md)

The trust stage writes one record per unit and render job under
``results/units/<model>/<layer>/trust/<job>/<cccc>.trust.json``; this module finds them and turns
each into plain words, a path curve (inline SVG: no script, byte-identical on rerun) and the seed
stability numbers, each explained in one sentence.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from featvis.core.io import read_json
from featvis.core.units import UNITS_ROOT
from featvis.gallery.html import esc, note, section

STAGE = "trust"
PAPER = ('Geirhos, Zimmermann, Bilodeau, Brendel and Kim, "Don\'t trust your eyes: on the (un)reliability '
         'of feature visualizations", ICML 2024')
DISTILL = 'Olah, Mordvintsev and Schubert, "Feature Visualization", Distill 2017'
# (field, label, colour, dashed): the four curves of the path check
CURVES = (("render_top", "render vs top images", "#c0392b", False),
          ("render_reference", "render vs reference images", "#c0392b", True),
          ("top_top", "top images vs each other", "#2a5db0", False),
          ("top_reference", "top vs reference images", "#2a5db0", True))
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 620, 240, 40, 190, 14, 80


def find_records(results: str | os.PathLike, model: str, layer: str,
                 producers: Sequence[str] | None = None) -> dict[int, list[dict]]:
    """Every trust record of the layer, by channel, in job order. ``producers`` (the run's own folders)
    keeps out what an earlier run with another config left behind."""
    root = Path(results) / UNITS_ROOT / model / layer / STAGE
    keep = None if producers is None else {Path(p).resolve() for p in producers}
    found: dict[int, list[dict]] = defaultdict(list)
    for path in sorted(root.glob("*/*.trust.json")):
        if keep is None or path.parent.resolve() in keep:
            record = read_json(path)
            found[int(record["channel"])].append(record)
    return dict(found)


def unit_score(records: Sequence[Mapping]) -> float | None:
    """The score of the unit's first checked render (for sorting a layer page), or None."""
    for record in records:
        for check in record.get("checks", []):
            if check.get("score") is not None:
                return float(check["score"])
    return None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f}"


def panel(records: Sequence[Mapping], rendered: bool) -> str:
    """The "Can this render be trusted?" section of a unit page ('' for a unit with no render)."""
    if not rendered:
        return ""
    if not records:
        return section("Can this render be trusted?", note(
            "No trust check for this render: the trust stage did not run on its render job (trust.enabled is "
            "false in the config, or the render job shows objectives rather than this unit)."), "trust")
    parts = [_explainer()]
    for record in records:
        parts.append(f"<h3>Render job {esc(record['job'])}</h3>")
        parts += [_check(check, record) for check in record["checks"]]
        parts.append(_stability(record))
    parts.append(_sources(records[0]))
    return section("Can this render be trusted?", "\n".join(parts), "trust")


def _explainer() -> str:
    return ("<p>A render is an image made to drive this unit as hard as possible. It can drive the unit in a way "
            "no photo does: a network can be changed so that its renders show anything while it still treats "
            f"photos as before ({esc(PAPER)}). The <strong>path check</strong> asks whether, on its way to this "
            "unit, the network sees the render as it sees the photos that drive the unit hardest (its <em>top "
            "images</em>), rather than as photos the unit responds to little (its <em>reference images</em>).</p>")


def _check(check: Mapping, record: Mapping) -> str:
    head = f"<p><strong>{esc(check['render'])}</strong>: "
    status = check.get("status")
    if status == "no_features":
        return head + "no path check.</p>" + note(record.get("missing") or "; ".join(check.get("notes", [])))
    notes = "".join(f"<li>{esc(n)}</li>" for n in check.get("notes", []))
    notes = f"<ul>{notes}</ul>" if notes else ""
    if status != "ok":
        return head + f"{esc(check['verdict'])}; no score.</p>{notes}"
    score, threshold = check["score"], check["threshold"]
    words = (f"{head}<strong>{esc(check['verdict'])}</strong> (score {_fmt(score)}; "
             f"{'at or above' if score >= threshold else 'below'} the threshold {_fmt(threshold)}).</p>")
    meaning = ("<p>The score compares how much more the render resembles the top images than the reference "
               "images with how much more the top images resemble each other than the reference images, over "
               "the layers before this one: 1 means the render stands apart from the reference images as much "
               "as the top images do, 0 that it looks no more like the top images than like the reference ones. "
               f"Below {_fmt(threshold)} the render probably reaches the unit by a path photos do not take: do not "
               "read it as a picture of what the unit sees in photos.</p>")
    curve = (f"<figure>{curve_svg(check['layers'])}<figcaption>How alike two images look to the network at each "
             "layer on the way to this unit (rank correlation of their channel averages: 1 the same channels "
             "high and low, 0 unrelated). Red: the render against the top images (solid) and the reference "
             "images (dashed); blue: the top images against each other (solid) and against the reference "
             "images (dashed). A trustworthy render keeps its red lines apart as the blue ones are. The last "
             "layer is the unit's own and does not count.</figcaption></figure>")
    return words + notes + meaning + curve


def curve_svg(layers: Sequence[Mapping]) -> str:
    """The four mean correlations per probe layer as lines, y from -1 to 1, layers along x."""
    n = len(layers)
    width = _W - _LEFT - _RIGHT

    def x(i: int) -> float:
        return _LEFT + (i / max(n - 1, 1)) * width

    def y(v: float) -> float:
        return _TOP + (1 - (max(-1.0, min(1.0, v)) + 1) / 2) * (_H - _TOP - _BOTTOM)

    grid = "".join(f'<line x1="{_LEFT}" x2="{_LEFT + width}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{_LEFT - 4}" y="{y(v) + 3:.1f}" text-anchor="end">{v:g}</text>' for v in (-1, 0, 1))
    labels = "".join(f'<text transform="translate({x(i):.1f},{_H - _BOTTOM + 8}) rotate(45)">{esc(row["layer"])}</text>'
                     for i, row in enumerate(layers))
    lines, legend = [], []
    for at, (key, label, colour, dashed) in enumerate(CURVES):
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        points = " ".join(f"{x(i):.1f},{y(row[key]):.1f}" for i, row in enumerate(layers))
        lines.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"{dash}/>')
        ly = _TOP + 12 + 16 * at
        legend.append(f'<line x1="{_W - _RIGHT + 10}" x2="{_W - _RIGHT + 30}" y1="{ly}" y2="{ly}" stroke="{colour}" '
                      f'stroke-width="1.6"{dash}/><text x="{_W - _RIGHT + 34}" y="{ly + 3}">{esc(label)}</text>')
    return (f'<svg class="chart trust-curve" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
            f'aria-label="path check curve">{grid}{"".join(lines)}{labels}{"".join(legend)}</svg>')


def _stability(record: Mapping) -> str:
    stability = record.get("seed_stability")
    if not stability:
        return ""
    seeds = len(stability["seeds"])
    text = (f"<p><strong>Seed stability.</strong> The unit was rendered again from {seeds} random starts (seeds). "
            f"How alike the network finds these {seeds} renders, averaged over the layers before this one: "
            f"<strong>{_fmt(stability['seeds_mean'])}</strong> (cosine similarity of their channel averages: "
            "1 the same, 0 unrelated).")
    if stability.get("top_mean") is not None:
        text += (f" For comparison, the unit's top images among themselves: {_fmt(stability['top_mean'])}.")
    if stability.get("others_mean") is not None:
        text += (f" This unit's renders against the renders of the other units of the job: "
                 f"{_fmt(stability['others_mean'])}. Renders look alike partly because they are all renders; "
                 "the render is a property of the unit rather than of its random start when its own seeds are "
                 "clearly more alike than that.")
    else:
        text += " (No other unit in the job to compare with.)"
    if not stability.get("standardised"):
        text += " Without natural images the raw channel averages are compared."
    return text + "</p>"


def _sources(record: Mapping) -> str:
    top = f"top-{record['k']}" if record.get("dataset") else "top"
    where = f" of {esc(record['dataset'])}" if record.get("dataset") else ""
    return (f"<p class=\"sources\">Top images: the unit's {top} images{where} by their maximum activation; "
            f"reference images: {esc(record['reference'])}; layers read: {esc(record['probe_rule'])}. "
            f"Method after {esc(PAPER)}; renders after {esc(DISTILL)}. See docs/trust.md.</p>")
