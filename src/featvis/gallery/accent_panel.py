"""The unit page's accentuation panel and the renders' transparency toggle.

Accentuations (the render stage's ``accentuate`` producer, ``<cccc>.seed<k>.png`` and
``<cccc>.accent<k>.png``) are shown as pairs, the natural patch beside its accentuation, with the
activation before and after. A render whose transparency map lies beside it
(``<cccc>.copy<k>.transparency.png``) gets an RGBA copy in the gallery and a checkbox that shows it
instead of the plain render (plain by default; CSS only, no script, works offline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from featvis.core.io import atomic_path
from featvis.gallery.html import esc, figure, section

ACCENT_STAGE = "accentuate"
SEED_KIND, ACCENT_KIND = re.compile(r"^seed(\d+)$"), re.compile(r"^accent(\d+)$")
HAMBLIN = ('Hamblin, Fel, Saha, Konkle and Alvarez (2024), "Feature Accentuation: Revealing '
           '\u2018What\u2019 Features Respond to in Natural Images"')
MACO = ('Fel et al. (2023), "Unlocking Feature Visualization for Deeper Networks with MAgnitude Constrained '
        'Optimization" (MACO; the Horama library)')


class Picture(Protocol):  # featvis.gallery.layer.Picture
    stage: str
    source: str
    kind: str
    path: Path
    caption: dict | None

    @property
    def copy_name(self) -> str: ...


def transparency_source(picture: Picture) -> Path | None:
    """The render's transparency map beside it, if the render job wrote one."""
    if picture.stage != "render":
        return None
    path = picture.path.with_name(f"{picture.path.stem}.transparency.png")
    return path if path.exists() else None


def alpha_name(picture: Picture) -> str:
    return picture.copy_name.removesuffix(".png") + ".alpha.png"


def write_alpha_images(img_dir: str | Path, pictures: Sequence[Picture]) -> None:
    """An RGBA copy of every render that has a transparency map: the render, its map as alpha."""
    for p in pictures:
        source = transparency_source(p)
        if source is None:
            continue
        rgb = np.asarray(Image.open(p.path).convert("RGB"))
        alpha = np.asarray(Image.open(source).convert("L").resize(rgb.shape[1::-1], Image.Resampling.BILINEAR))
        with atomic_path(Path(img_dir) / alpha_name(p)) as tmp:
            Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp, format="PNG")


def render_figure(picture: Picture, caption: str, alt: str) -> str:
    """A render, plain; with a transparency map, a checkbox that shows it faded where it mattered least."""
    if transparency_source(picture) is None:
        return figure(f"img/{picture.copy_name}", caption, alt, cls="render")
    ident = "alpha-" + re.sub(r"[^A-Za-z0-9_-]", "-", picture.copy_name)
    return (f'<figure class="render with-alpha"><input type="checkbox" class="alpha-switch" id="{ident}">'
            f'<span class="alpha-pair"><img class="plain" src="img/{esc(picture.copy_name)}" alt="{esc(alt)}" '
            f'loading="lazy"><img class="alpha" src="img/{esc(alpha_name(picture))}" '
            f'alt="{esc(alt)}, transparency map as alpha" loading="lazy"></span>'
            f'<figcaption>{caption} <label for="{ident}">show the transparency map</label></figcaption></figure>')


TRANSPARENCY_NOTE = (
    "<p class=\"explain\">The transparency map (as in Horama and " + esc(MACO) + ") adds up, over every "
    "optimisation step, how strongly each pixel of the render was pushed. Tick <em>show the transparency "
    "map</em> under a render to fade out the parts that were pushed least: what stays visible is what the "
    "unit responded to; a checkerboard shows through the rest.</p>")


def accent_section(pictures: Sequence[Picture], channel: int) -> str:
    """The accentuations of the unit's top images, pairs by rank and dataset, with their numbers explained."""
    accents = [p for p in pictures if p.stage == ACCENT_STAGE]
    if not accents:
        return ""
    pairs = []
    for dataset in sorted({p.source for p in accents}):
        own = {p.kind: p for p in accents if p.source == dataset}
        for kind, accent in sorted(own.items()):
            match = ACCENT_KIND.match(kind)
            if match is None:
                continue
            seed = own.get(f"seed{match.group(1)}")
            pairs.append(_pair(seed, accent, dataset, channel))
    return section("Feature accentuation", _EXPLAIN + "".join(pairs) + TRANSPARENCY_NOTE, "accentuation")


_EXPLAIN = (
    "<p class=\"explain\">Feature accentuation (" + esc(HAMBLIN) + ") starts from one of the unit's top "
    "dataset images and changes it a little, step by step, so that the unit responds more, while a pull keeps "
    "it close to the original. What grows shows what in that photo the unit responds to. Each pair shows the "
    "photo's patch (left, cut at the unit's receptive field) and the same patch after accentuation (right).</p>"
    "<ul class=\"explain\">"
    "<li><b>before</b>: the unit's response to the original photo, at the place where it responds most.</li>"
    "<li><b>after</b>: the unit's response at the same place to the accentuated photo.</li>"
    "<li><b>gain</b>: after divided by before (2&times; means the response doubled).</li>"
    "<li><b>change</b>: how much the pixels moved on average (root mean square), as a share of the full "
    "brightness range; a few percent means the photo still looks almost the same.</li></ul>")


def _pair(seed: Picture | None, accent: Picture, dataset: str, channel: int) -> str:
    cap = accent.caption or {}
    rank = int(cap.get("rank", 0)) + 1
    gain = cap.get("gain")
    words = (f"top image {rank} on {esc(dataset)}" + (f" ({esc(cap['label'])})" if cap.get("label") else "")
             + f": before {_fmt(cap.get('before'))}, after {_fmt(cap.get('after'))}"
             + (f", gain {_fmt(gain)}&times;" if gain is not None else ", gain n/a (the unit was silent)")
             + f", change {_fmt(100 * cap['distance'] if cap.get('distance') is not None else None)}%")
    cells = ""
    if seed is not None:
        cells += f'<img src="img/{esc(seed.copy_name)}" alt="top image {rank} of unit {channel}" loading="lazy">'
    cells += f'<img src="img/{esc(accent.copy_name)}" alt="its accentuation" loading="lazy">'
    return f'<figure class="accent">{cells}<figcaption>{words}</figcaption></figure>'


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.{digits}g}"
