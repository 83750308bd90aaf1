"""The HTML shell of a protein report: a local stylesheet, a table of contents, a glossary and a
prominent note when the model should not be trusted on this protein. No network, no scripts."""

from __future__ import annotations

import html
import os
from pathlib import Path

from featvis.core.io import write_text

STYLESHEET = "report.css"

_CSS = """body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 1400px; margin: 1em auto;
  padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: 0.2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
img { max-width: 100%; display: block; margin: 0.8em 0; }
nav.toc { background: #f6f6f6; border: 1px solid #ddd; padding: 0.5em 1.2em; display: inline-block; }
nav.toc ol { margin: 0.3em 0; padding-left: 1.2em; }
.warning { background: #fff4e5; border: 2px solid #e08214; padding: 0.7em 1em; font-size: 1.05em; }
.verdict { background: #eef5fb; border-left: 4px solid #2166ac; padding: 0.5em 1em; }
.note, .reading { color: #444; font-size: 0.92em; }
table.table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0; }
table.table td, table.table th { padding: 3px 9px; border-bottom: 1px solid #ddd; text-align: left; }
table.table th { background: #f0f0f0; }
dl.glossary dt { font-weight: bold; margin-top: 0.5em; }
dl.glossary dd { margin-left: 1.5em; }
.controls label { margin-right: 1.5em; }
@media print { nav.toc { display: none; } body { max-width: none; } }
"""

GLOSSARY = {
    "importance score": "How much the model relies on a residue when it reads the whole protein; 1.0 is an "
    "average residue. It is read from the model's internal weighting of residues, which is not always a faithful "
    "explanation, so the report checks it against sensitivity.",
    "model layer": "One step of the model's reading of the sequence; the model has several in a row.",
    "variant effect score": "Log ratio of how plausible the model finds the substitute residue versus the "
    "wild-type residue at that position. Below 0: less plausible; -2 is about 7 times less likely.",
    "masked / wild-type marginal": "Masked: the position is hidden from the model while it is scored (more "
    "accurate, one model run per position). Wild-type marginal: read from one run over the unchanged sequence.",
    "substitution scan": "The variant effect score of all 19 possible substitutions at every position.",
    "sensitivity": "Minus the average variant effect score of the 19 substitutions at a position: high where "
    "the model finds most changes implausible.",
    "percentile": "Where a variant's score falls among all substitutions of the protein: the 5th percentile "
    "means only 5% of substitutions score as low or lower.",
    "Spearman rank correlation": "Agreement of two rankings, from -1 (opposite) through 0 (none) to +1 (same).",
    "pair map": "How strongly each residue draws on each other residue in the model.",
    "contact": "Two residues whose C-beta atoms (C-alpha for glycine) lie within 8 angstroms in the structure.",
    "domain": "A named stretch of the sequence given in the protein table.",
    "DMS assay": "A deep mutational scanning experiment: measured fitness of many substitutions.",
}


def model_warning(model: str) -> str:
    """A prominent note when the model's scores mean little for most proteins; empty otherwise."""
    if model.startswith("random:"):
        return ("This report was made with a randomly initialised model. Its scores carry no biological meaning: "
                "it exists to test the software.")  # fmt: skip
    if model == "antiberty":
        return ("AntiBERTy was trained on antibody sequences only. Its scores mean little for any protein that is "
                "not an antibody variable domain.")  # fmt: skip
    return ""


def write_stylesheet(outdir: str | os.PathLike) -> None:
    write_text(Path(outdir) / STYLESHEET, _CSS)


def page(title: str, intro: str, sections: list[tuple[str, str, str]], model: str) -> str:
    """The report page: ``sections`` are (anchor, heading, HTML body); a glossary is added last."""
    warning = model_warning(model)
    glossary = "".join(f"<dt>{html.escape(term)}</dt><dd>{html.escape(text)}</dd>" for term, text in GLOSSARY.items())
    sections = [*sections, ("glossary", "Glossary", f'<dl class="glossary">{glossary}</dl>')]
    toc = "".join(f'<li><a href="#{a}">{html.escape(h)}</a></li>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{html.escape(h)}</h2>\n{b}</section>' for a, h, b in sections)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
        f'<link rel="stylesheet" href="{STYLESHEET}"></head><body>\n<h1>{html.escape(title)}</h1>\n'
        + (f'<p class="warning"><b>Read this first.</b> {html.escape(warning)}</p>\n' if warning else "")
        + f'{intro}\n<nav class="toc"><b>Contents</b><ol>{toc}</ol></nav>\n{body}\n</body></html>\n'
    )
