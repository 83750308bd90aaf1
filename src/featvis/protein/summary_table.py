"""The all-variants score table and the index page linking each protein's report."""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import pandas as pd

from featvis.core.io import write_text

# Column headings shown to readers; the TSV files keep the short machine names.
DISPLAY_COLUMNS = {
    "protein": "protein",
    "variant": "variant",
    "notation": "as written",
    "position": "position",
    "masked_marginal": "variant effect score (masked)",
    "wildtype_marginal": "variant effect score (wild-type marginal)",
    "percentile": "percentile among all substitutions",
    "importance_wildtype": "importance score, wild type",
    "importance_variant": "importance score, variant",
    "change": "change in importance score",
    "wild_type": "wild-type residue",
    "mutant": "variant residue",
    "effect": "kind of change",
    "model": "model",
}


def write_index(
    table: pd.DataFrame,
    table_path: str | os.PathLike,
    index_path: str | os.PathLike,
    report_links: dict[str, str],
) -> None:
    """Write ``table`` as TSV and an HTML page with the table and links to the reports."""
    write_text(table_path, table.to_csv(sep="\t", index=False))
    links = "".join(
        f'<li><a href="{html.escape(href)}">{html.escape(name)}</a></li>' for name, href in sorted(report_links.items())
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Variant effect scores</title>'
        "<style>body{font-family:sans-serif;margin:1em}"
        " td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>"
        "</head><body><h1>Variant effect scores</h1>"
        "<p>Log ratio of how plausible the model finds the variant residue versus the wild-type residue "
        "(below 0: less plausible). Masked: the position is hidden from the model. Research use only.</p>"
        + table.rename(columns=DISPLAY_COLUMNS).to_html(index=False, border=0)
        + f"<h2>Reports</h2><ul>{links}</ul></body></html>\n"
    )
    write_text(index_path, page)


def prune_stale(root: str | os.PathLike, keep: list[str]) -> list[str]:
    """Remove report folders under ``root`` of proteins no longer in the table; their names."""
    stale = sorted(p.name for p in Path(root).iterdir() if p.is_dir() and p.name not in keep)
    for name in stale:
        shutil.rmtree(Path(root) / name)
    return stale
