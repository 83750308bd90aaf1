"""Inline SVG charts (no script, no library): a histogram and a line trace."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featvis.gallery.html import esc

_W, _H, _PAD = 360, 140, 28


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def histogram(values: np.ndarray, bins: int = 40, marker: float | None = None, marker_label: str = "",
              xlabel: str = "") -> str:
    """Counts of ``values`` as bars; an optional vertical marker (a render's activation)."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if marker is not None:
        lo, hi = min(lo, marker), max(hi, marker)
    hi = hi if hi > lo else lo + 1.0
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    width = (_W - 2 * _PAD) / bins

    def x(v: float) -> float:
        return _PAD + (v - lo) / (hi - lo) * (_W - 2 * _PAD)

    bars = "".join(
        f'<rect x="{_PAD + i * width:.1f}" y="{_H - _PAD - c / top * (_H - 2 * _PAD):.1f}" '
        f'width="{max(width - 1, 0.5):.1f}" height="{c / top * (_H - 2 * _PAD):.1f}" class="bar"/>'
        for i, c in enumerate(counts) if c
    )
    mark = ""
    if marker is not None:
        mx = x(marker)
        mark = (f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{_PAD - 8}" y2="{_H - _PAD}" class="marker"/>'
                f'<text x="{mx:.1f}" y="{_PAD - 11}" text-anchor="middle" class="marker">{esc(marker_label)}</text>')
    axis = (f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{_H - _PAD}" y2="{_H - _PAD}" class="axis"/>'
            f'<text x="{_PAD}" y="{_H - 10}">{_fmt(lo)}</text>'
            f'<text x="{_W - _PAD}" y="{_H - 10}" text-anchor="end">{_fmt(hi)}</text>'
            f'<text x="{_W / 2}" y="{_H - 10}" text-anchor="middle">{esc(xlabel)}</text>'
            f'<text x="4" y="12">images per bin (tallest: {top})</text>')
    return f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img">{bars}{mark}{axis}</svg>'


def trace(values: Sequence[float], xlabel: str = "step", ylabel: str = "objective") -> str:
    """A line of ``values`` over steps 1..n."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return ""
    lo, hi = float(values.min()), float(values.max())
    hi = hi if hi > lo else lo + 1.0
    n = max(values.size - 1, 1)
    points = " ".join(f"{_PAD + i / n * (_W - 2 * _PAD):.1f},{_H - _PAD - (v - lo) / (hi - lo) * (_H - 2 * _PAD):.1f}"
                      for i, v in enumerate(values))
    axis = (f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{_H - _PAD}" y2="{_H - _PAD}" class="axis"/>'
            f'<text x="{_PAD}" y="{_H - 10}">1</text>'
            f'<text x="{_W - _PAD}" y="{_H - 10}" text-anchor="end">{values.size}</text>'
            f'<text x="{_W / 2}" y="{_H - 10}" text-anchor="middle">{esc(xlabel)}</text>'
            f'<text x="4" y="{_PAD - 10}">{esc(ylabel)}: {_fmt(lo)} to {_fmt(hi)}</text>')
    return (f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img">'
            f'<polyline points="{points}" class="line"/>{axis}</svg>')
