"""The printable page of one variant (``<variant>.pdf``, A4) for a clinic file.

It carries the variant, its score and percentile among all substitutions of the protein,
the neighbourhood picture, a structure still when a structure is given, and the model
with its limits in plain words. Written with fixed metadata, so reruns are byte-identical.
"""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt

from featvis.core.figures import save_figure
from featvis.protein.page import model_warning

A4 = (8.27, 11.69)


@dataclass(frozen=True)
class VariantSummary:
    protein: str
    variant: str  # as written in the table
    score: float
    percentile: float
    scan_method: str
    model: str
    model_note: str
    agreement: str  # the importance-vs-sensitivity sentence


def limits(summary: VariantSummary) -> str:
    """The model and its limits, in plain words."""
    return (
        f"Model: {summary.model}. {summary.model_note} The score compares how plausible the model finds the "
        "variant residue with the wild-type residue, learned only from natural protein sequences: it knows nothing "
        "of this patient, of inheritance, of expression or of clinical evidence. It is a research output, not a "
        "classification under clinical guidelines (for example ACMG/AMP), and must not be used alone to decide "
        f"care. {summary.agreement}"
    )


def _paragraph(fig: plt.Figure, y: float, text: str, size: float = 9.5, width: int = 100, **kwargs) -> float:
    """Wrapped text from height ``y`` (figure fraction) down; returns the y below it."""
    wrapped = textwrap.fill(text, width)
    fig.text(0.07, y, wrapped, fontsize=size, va="top", ha="left", **kwargs)
    return y - (wrapped.count("\n") + 1) * size * 1.45 / 72 / A4[1] - 0.01


def _picture(fig: plt.Figure, path: Path, top: float, height: float) -> float:
    """Place a PNG under ``top`` within the page margins, keeping its aspect; returns the y below it."""
    image = mpimg.imread(path)
    aspect = image.shape[0] / image.shape[1]
    width = min(0.86, height * A4[1] / aspect / A4[0])
    h = width * A4[0] * aspect / A4[1]
    ax = fig.add_axes((0.07, top - h, width, h))
    ax.imshow(image, interpolation="lanczos")
    ax.axis("off")
    return top - h - 0.015


def variant_page(
    summary: VariantSummary, neighbourhood: Path, path: str | os.PathLike, snapshot: Path | None = None
) -> None:
    """Write the A4 PDF page of one variant."""
    fig = plt.figure(figsize=A4)
    fig.text(0.07, 0.955, f"{summary.protein}: variant {summary.variant}", fontsize=17, weight="bold", va="top")
    direction = "less" if summary.score < 0 else "more"
    y = _paragraph(
        fig,
        0.915,
        f"Variant effect score {summary.score:+.2f} ({summary.scan_method} scan): the model finds the variant "
        f"residue {direction} plausible than the wild type. Among all single substitutions of this protein it "
        f"is at percentile {summary.percentile:.0f}: {summary.percentile:.0f}% of them score the same or lower, "
        "that is, look at least as damaging to the model.",
        size=10.5,
        width=92,
    )
    warning = model_warning(summary.model)
    if warning:
        y = _paragraph(fig, y, "Read this first: " + warning, size=10.5, width=92, color="#b35806", weight="bold")
    y = _picture(fig, neighbourhood, y - 0.01, 0.27)
    if snapshot is not None:
        y = _picture(fig, snapshot, y, 0.3)
    fig.text(0.07, y - 0.005, "The model and its limits", fontsize=12, weight="bold", va="top")
    _paragraph(fig, y - 0.03, limits(summary), size=9.5)
    fig.text(0.07, 0.03, "featvis protein report: research use only.", fontsize=8, color="#555555")
    save_figure(fig, path)
