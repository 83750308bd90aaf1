"""The page shell and small HTML pieces every gallery page shares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def page(title: str, body: str, root: str, crumbs: Sequence[tuple[str, str | None]] = (),
         script: bool = False) -> str:
    """A whole page. ``root`` is the relative path to the gallery root ("", "../", "../../");
    ``crumbs`` are (label, href or None) from the index down to this page."""
    trail = " / ".join(f'<a href="{esc(href)}">{esc(label)}</a>' if href else f"<span>{esc(label)}</span>"
                       for label, href in crumbs)
    js = f'<script src="{root}assets/gallery.js"></script>' if script else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{esc(title)} · featvis</title>"
        f'<link rel="stylesheet" href="{root}assets/gallery.css"></head>\n<body>'
        f'<header><a class="brand" href="{root}index.html">featvis</a><nav>{trail}</nav></header>\n'
        f"<main>\n<h1>{esc(title)}</h1>\n{body}\n</main>{js}</body></html>\n"
    )


def figure(src: str, caption: str = "", alt: str = "", width: int | None = None, height: int | None = None,
           cls: str = "") -> str:
    """A lazily loaded picture with a caption (width/height reserve its box before it loads)."""
    size = f' width="{width}" height="{height}"' if width and height else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (f'<figure{klass}><img src="{esc(src)}" alt="{esc(alt or caption)}" loading="lazy"{size}>'
            f"{cap}</figure>")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(title: str, body: str, anchor: str = "") -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{esc(title)}</h2>\n{body}\n</section>"


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'
