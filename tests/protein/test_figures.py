"""Legibility of the clinician figures: nothing clipped, bars not anchored at 0, a note for blank pairs."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from featvis.protein import figures
from featvis.protein.sequences import Domain, parse_variant

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDF" * 4
VARIANT = parse_variant("K2A")


def inside(fig: plt.Figure) -> None:
    """Every drawn artist (labels, colour bars, legends) lies within the figure's own area."""
    fig.canvas.draw()
    tight = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    width, height = fig.get_size_inches()
    slack = 0.02
    assert tight.x0 >= -slack and tight.y0 >= -slack, tight
    assert tight.x1 <= width + slack and tight.y1 <= height + slack, (tight, width, height)


def smallest_font_on_page(fig: plt.Figure, page_inches: float = 14.0) -> float:
    """Smallest text size in points once the figure is scaled to the page width."""
    scale = min(1.0, page_inches / fig.get_figwidth())
    return min(t.get_fontsize() for t in fig.findobj(plt.Text) if t.get_text().strip()) * scale


@pytest.fixture
def per_layer():
    rng = np.random.default_rng(0)
    return 1.0 + 0.05 * rng.standard_normal((8, len(SEQ)))


def test_overview_bars_start_near_the_data_and_text_stays_legible(per_layer):
    fig = figures.importance_overview(per_layer, [Domain("A", 1, 50)], [VARIANT], "t")
    inside(fig)
    profile = fig.axes[2]
    low, high = profile.get_ylim()
    assert low > 0.5 and high < 1.5  # scores near 1.0 are not a solid slab from 0
    assert fig.get_figwidth() <= figures.MAX_WIDTH
    assert smallest_font_on_page(fig) >= 6.5
    plt.close(fig)


def test_zoom_legend_does_not_cover_the_bars(per_layer):
    wild, mutant = per_layer[0], per_layer[1]
    fig = figures.neighbourhood(SEQ, wild, mutant, parse_variant("A20E") if SEQ[19] == "A" else VARIANT, 10, "t")
    inside(fig)
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    for bar in ax.patches:
        if bar.get_height() > 0 and bar.get_width() < 1:
            assert not legend.overlaps(bar.get_window_extent()), bar
    assert ax.get_ylim()[0] > 0.5
    plt.close(fig)


def test_pair_maps_fit_and_explain_blank_corners():
    n = 60
    wild = np.random.default_rng(1).random((n, n))
    wild[:10, 50:] = wild[50:, :10] = np.nan  # what tiling leaves where no window holds both residues
    fig = figures.pair_maps(wild, wild * 1.1, VARIANT, "t", "w")
    inside(fig)  # colour-bar labels are not clipped
    text = " ".join(t.get_text() for t in fig.findobj(plt.Text))
    assert "no window holds both residues" in text
    plt.close(fig)
    fig = figures.pair_maps(np.ones((n, n)), np.ones((n, n)), VARIANT, "t", "w")
    assert "no window" not in " ".join(t.get_text() for t in fig.findobj(plt.Text))
    plt.close(fig)


def test_change_and_logo_fit(per_layer):
    fig = figures.importance_change(per_layer[1] - per_layer[0], [Domain("A", 1, 50)], VARIANT, [3, 4], "t")
    inside(fig)
    plt.close(fig)
    probs = np.full((8, 20), 0.05)
    fig = figures.sequence_logo(probs, 0, SEQ, VARIANT, [2], "t")
    inside(fig)
    plt.close(fig)
