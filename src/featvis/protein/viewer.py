"""The 3D structure page: 3Dmol.js (BSD-3, vendored in ``protein/vendor/3dmol``, so ``pip install``
brings it) copied beside the page, the structure inlined, so the page works offline from ``file://``.

The cartoon is coloured by a per-residue track (importance, sensitivity, ...), chosen in a
menu; the variant residue is drawn as labelled sticks; domains can be shown instead.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from pathlib import Path

import numpy as np

from featvis.core.io import atomic_path, write_text
from featvis.protein.sequences import Domain
from featvis.protein.structure import Residue

LIBRARY = Path(__file__).with_name("vendor") / "3dmol" / "3Dmol-min.js"
INSTALL = "pip install -e ."  # the README's install command brings it
DOMAIN_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


VIEWER_HINT = (f"A still picture: the interactive 3D view needs 3Dmol.js, which is not installed; add it with "
               f"`{INSTALL}` and run the workflow again.")  # fmt: skip


class ViewerMissingError(ValueError):
    """3Dmol.js has not been installed next to the package."""


def viewer_library() -> Path:
    """The installed 3Dmol.js file, or an error saying how to install it."""
    if not LIBRARY.is_file():
        raise ViewerMissingError(f"the 3D viewer (3Dmol.js) is missing from {LIBRARY.parent}: "
                                 f"reinstall featvis (`{INSTALL}` in the repository)")
    return LIBRARY


def viewer_installed() -> bool:
    return LIBRARY.is_file()


def copy_library(outdir: str | os.PathLike) -> str:
    """Copy 3Dmol.js (and its licence) into ``outdir``; the file name pages refer to."""
    source = viewer_library()
    for path in (source, source.with_name(source.name + ".LICENSE.txt")):
        if path.is_file():
            with atomic_path(Path(outdir) / path.name) as tmp:
                shutil.copyfile(path, tmp)
    return source.name


def _chain(residue: Residue) -> str:
    """The chain as 3Dmol reads it from PDB column 22: a blank chain name is a space."""
    return residue.chain or " "


def _key(residue: Residue) -> str:
    return f"{_chain(residue)}:{residue.number}{residue.icode}"


def _residue_values(residues: list[Residue], mapping: list[int | None], values: np.ndarray) -> dict[str, float]:
    """Track values keyed the way 3Dmol names residues: chain, number and insertion code."""
    return {
        _key(r): round(float(values[j]), 4)
        for r, j in zip(residues, mapping, strict=True)
        if j is not None and np.isfinite(values[j])
    }


def viewer_html(
    pdb_text: str,
    residues: list[Residue],
    mapping: list[int | None],
    tracks: dict[str, tuple[np.ndarray, bool, str]],
    variant_index: int | None,
    variant_label: str,
    domains: list[Domain],
    title: str,
    reading: str,
    alignment_note: str,
    library: str = LIBRARY.name,
) -> str:
    """HTML of the viewer page. ``tracks``: name -> (values per sequence position, diverging, note)."""
    placed = {j: r for r, j in zip(residues, mapping, strict=True) if j is not None}
    variant = placed.get(variant_index) if variant_index is not None else None
    data = {
        "pdb": pdb_text,
        "chain": _chain(residues[0]),
        "tracks": {name: {"values": _residue_values(residues, mapping, v), "diverging": div, "note": note}
                   for name, (v, div, note) in tracks.items()},  # fmt: skip
        "variant": None if variant is None else {"resi": variant.number, "label": variant_label},
        "domains": [
            {"name": d.name, "colour": DOMAIN_COLOURS[k % len(DOMAIN_COLOURS)],
             "keys": [_key(placed[j]) for j in range(d.start - 1, d.end) if j in placed]}
            for k, d in enumerate(domains)
        ],  # fmt: skip
    }
    return _PAGE.format(
        title=html.escape(title),
        reading=html.escape(reading),
        alignment=html.escape(alignment_note),
        library=html.escape(library),
        data=json.dumps(data).replace("</", "<\\/"),
        script=_SCRIPT,
    )


def write_viewer(path: str | os.PathLike, **kwargs) -> None:
    """Write the page and copy 3Dmol.js beside it."""
    kwargs["library"] = copy_library(Path(path).parent)
    write_text(path, viewer_html(**kwargs))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="report.css">
<script src="{library}"></script>
</head><body>
<h1>{title}</h1>
<p class="reading">{reading}</p>
<div class="controls">
<label>Colour by: <select id="track"></select></label>
<label><input type="checkbox" id="domains"> show domains instead</label>
<span id="legend"></span>
</div>
<div id="view" style="width: 820px; height: 600px; position: relative; border: 1px solid #ccc;"></div>
<p class="note">Drag to rotate, scroll to zoom. The variant residue is drawn as sticks with a label.
Grey: parts of the structure without a score (other chains, residues the sequence lacks).</p>
<p class="note"><b>Structure alignment:</b> {alignment}</p>
<script>
const DATA = {data};
{script}
</script>
</body></html>
"""

_SCRIPT = """
(function () {
  "use strict";
  const viewer = $3Dmol.createViewer(document.getElementById("view"), {backgroundColor: "white"});
  viewer.addModel(DATA.pdb, "pdb");
  const select = document.getElementById("track");
  const domainsBox = document.getElementById("domains");
  Object.keys(DATA.tracks).forEach(name => select.add(new Option(name, name)));
  if (!DATA.domains.length) { domainsBox.disabled = true; }
  const key = atom => atom.chain + ":" + atom.resi + (atom.icode || "").trim();
  function scale(values, diverging) {
    const list = Object.values(values);
    const lo = Math.min(...list), hi = Math.max(...list);
    const bound = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const stops = diverging ? [[33, 102, 172], [247, 247, 247], [178, 24, 43]]
                            : [[255, 247, 236], [253, 141, 60], [127, 39, 4]];
    return v => {
      let t = diverging ? (v / bound + 1) / 2 : (hi > lo ? (v - lo) / (hi - lo) : 0.5);
      t = Math.min(1, Math.max(0, t));
      const k = t < 0.5 ? 0 : 1, u = t < 0.5 ? t * 2 : t * 2 - 1;
      const c = stops[k].map((a, i) => Math.round(a + (stops[k + 1][i] - a) * u));
      return "rgb(" + c.join(",") + ")";
    };
  }
  function draw() {
    viewer.setStyle({}, {line: {color: "#bbbbbb"}});
    viewer.setStyle({hetflag: false}, {cartoon: {color: "#dddddd"}});
    let colourOf;
    if (domainsBox.checked) {
      const byKey = {};
      DATA.domains.forEach(d => d.keys.forEach(k => { byKey[k] = d.colour; }));
      colourOf = atom => byKey[key(atom)] || "#dddddd";
      document.getElementById("legend").innerHTML = DATA.domains.map(
        d => '<span style="color:' + d.colour + '">&#9632; ' + d.name + "</span>").join(" ");
    } else {
      const track = DATA.tracks[select.value];
      const colour = scale(track.values, track.diverging);
      colourOf = atom => (key(atom) in track.values ? colour(track.values[key(atom)]) : "#dddddd");
      document.getElementById("legend").textContent = track.note;
    }
    viewer.setStyle({chain: DATA.chain, hetflag: false}, {cartoon: {colorfunc: colourOf}});
    viewer.removeAllLabels();
    if (DATA.variant) {
      const sel = {chain: DATA.chain, resi: DATA.variant.resi};
      viewer.addStyle(sel, {stick: {colorscheme: "greenCarbon", radius: 0.3}});
      viewer.addLabel(DATA.variant.label, {fontColor: "black", backgroundColor: "#e5f5e0", fontSize: 14}, sel);
    }
    viewer.render();
  }
  select.addEventListener("change", draw);
  domainsBox.addEventListener("change", draw);
  draw();
  viewer.zoomTo();
  viewer.render();
  window.featvisViewerReady = true;
  window.featvisViewer = viewer;
})();
"""
