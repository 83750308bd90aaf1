"""The all-variants score table and the index page linking each protein's report."""

from __future__ import annotations

import html
import os

import pandas as pd

from featvis.core.io import write_text


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
        + table.to_html(index=False, border=0)
        + f"<h2>Reports</h2><ul>{links}</ul></body></html>\n"
    )
    write_text(index_path, page)
