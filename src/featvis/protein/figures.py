"""Clinician-facing figures. Words used: "importance score", "model layer".

Every figure carries a one-line plain-language reading under its title.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.patches import Rectangle
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from featvis.protein.sequences import AMINO_ACIDS, Domain, Variant

_DOMAIN_COLOURS = ["#8dd3c7", "#fdb462", "#bebada", "#fb8072", "#80b1d3", "#b3de69", "#fccde5", "#d9d9d9"]
# Residue colours by chemistry (hydrophobic, polar, positive, negative, special).
_AA_COLOURS = {
    **dict.fromkeys("AVLIMFWC", "#1b9e77"),
    **dict.fromkeys("STNQYH", "#7570b3"),
    **dict.fromkeys("KR", "#2166ac"),
    **dict.fromkeys("DE", "#d6604d"),
    **dict.fromkeys("GP", "#e6ab02"),
}


def _heading(fig: plt.Figure, title: str, reading: str) -> None:
    """Title and its one-line reading, placed in inches from the top so they never overlap."""
    height = fig.get_figheight()
    fig.text(0.01, 1 - 0.08 / height, title, fontsize=11, ha="left", va="top")
    fig.text(0.01, 1 - 0.34 / height, reading, fontsize=8.5, ha="left", va="top", style="italic", color="#333333")


def _domain_track(ax: plt.Axes, domains: list[Domain], length: int) -> None:
    ax.set_xlim(0.5, length + 0.5)
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    for k, d in enumerate(domains):
        ax.add_patch(Rectangle((d.start - 0.5, 0), d.end - d.start + 1, 1, color=_DOMAIN_COLOURS[k % 8], lw=0))
        ax.text((d.start + d.end) / 2, 0.5, d.name, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_ylabel("domains", rotation=0, ha="right", va="center", fontsize=8)


def _mark(ax: plt.Axes, variant: Variant | None, label: bool = False) -> None:
    if variant is None:
        return
    ax.axvline(variant.position, color="#00a000", lw=1.2, ls="--")
    if label:
        ax.annotate(
            f"variant {variant.label}",
            (variant.position, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=8,
            color="#006400",
        )


def importance_overview(
    per_layer: np.ndarray, domains: list[Domain], variants: list[Variant], title: str
) -> plt.Figure:
    """Heatmap of importance scores (model layers x residues), overall profile, domain track.

    The configured variants' positions are marked on every panel.
    """
    layers, length = per_layer.shape
    overall = per_layer.mean(0)
    fig = plt.figure(figsize=(min(24, max(9, length * 0.07)), 5.6))
    grid = fig.add_gridspec(
        3,
        2,
        height_ratios=[3, 1.6, 0.45],
        width_ratios=[60, 1],
        hspace=0.12,
        wspace=0.02,
        top=0.86,
        bottom=0.09,
        left=0.08,
        right=0.95,
    )
    ax = fig.add_subplot(grid[0, 0])
    image = ax.imshow(
        per_layer,
        aspect="auto",
        cmap="Oranges",
        interpolation="nearest",
        extent=(0.5, length + 0.5, layers + 0.5, 0.5),
    )
    ax.set_ylabel("model layer\n(1 = first)")
    ax.tick_params(labelbottom=False)
    for variant in variants:
        _mark(ax, variant, label=True)
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label="importance score")
    prof = fig.add_subplot(grid[1, 0], sharex=ax)
    prof.bar(np.arange(1, length + 1), overall, width=1.0, color="#d95f0e")
    prof.axhline(1.0, color="#777777", lw=0.8, ls=":")
    prof.set_ylabel("importance score\n(all layers)")
    for variant in variants:
        _mark(prof, variant)
    prof.tick_params(labelbottom=False)
    dom = fig.add_subplot(grid[2, 0], sharex=ax)
    _domain_track(dom, domains, length)
    dom.set_xlabel("residue position")
    _heading(
        fig,
        title,
        "Darker means the model relies more on that residue when reading the protein; "
        "1.0 on the lower panel is an average residue.",
    )
    return fig


def neighbourhood(
    sequence: str, wild: np.ndarray, variant_scores: np.ndarray, variant: Variant, window: int, title: str
) -> plt.Figure:
    """Importance scores of the residues around the variant, wild type beside variant."""
    lo, hi = max(0, variant.index - window), min(len(sequence), variant.index + window + 1)
    pos = np.arange(lo, hi)
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(pos) + 2), 3.6))
    fig.subplots_adjust(top=0.8, bottom=0.2)
    ax.bar(pos + 1 - 0.2, wild[lo:hi], width=0.4, color="#9e9ac8", label="wild type")
    ax.bar(pos + 1 + 0.2, variant_scores[lo:hi], width=0.4, color="#d95f0e", label=f"variant {variant.label}")
    ax.axvspan(variant.position - 0.5, variant.position + 0.5, color="#00a000", alpha=0.12)
    ax.axhline(1.0, color="#777777", lw=0.8, ls=":")
    ax.set_xticks(pos + 1, [f"{sequence[i]}\n{i + 1}" for i in pos], fontsize=7)
    ax.set_ylabel("importance score")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    _heading(
        fig,
        title,
        f"Residues within {window} positions of {variant.label}; the shaded column is the changed residue.",
    )
    return fig


def pair_maps(wild: np.ndarray, mutant: np.ndarray, variant: Variant, title: str, what: str) -> plt.Figure:
    """Wild-type and variant residue-pair maps side by side, with their difference."""
    diff = mutant - wild
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.3))
    fig.subplots_adjust(top=0.8, wspace=0.45, left=0.05, right=0.95)
    high = np.nanpercentile(np.concatenate([wild.ravel(), mutant.ravel()]), 99)
    low = min(0.0, np.nanpercentile(np.concatenate([wild.ravel(), mutant.ravel()]), 1))
    n = wild.shape[0]
    extent = (0.5, n + 0.5, n + 0.5, 0.5)
    for ax, data, name in ((axes[0], wild, "wild type"), (axes[1], mutant, f"variant {variant.label}")):
        im = ax.imshow(data, cmap="Oranges", vmin=low, vmax=high, interpolation="nearest", extent=extent)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, label="importance score")
    bound = float(np.nanmax(np.abs(diff))) or 1.0
    im = axes[2].imshow(
        diff, cmap="RdBu_r", norm=TwoSlopeNorm(0, -bound, bound), interpolation="nearest", extent=extent
    )
    axes[2].set_title("variant minus wild type", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046, label="change in importance score")
    for ax in axes:
        ax.set_xlabel("residue position (is used)")
        ax.set_ylabel("residue position (uses)")
        ax.axvline(variant.position, color="#00a000", lw=0.6, ls="--")
        ax.axhline(variant.position, color="#00a000", lw=0.6, ls="--")
    _heading(
        fig,
        title,
        f"How strongly each residue draws on each other residue ({what}); on the right, red "
        "pairs gain and blue pairs lose importance with the variant.",
    )
    return fig


def importance_change(
    delta: np.ndarray, domains: list[Domain], variant: Variant, top: list[int], title: str
) -> plt.Figure:
    """Change in each residue's importance score (variant minus wild type) along the sequence."""
    n = len(delta)
    fig = plt.figure(figsize=(min(24, max(9, n * 0.07)), 3.8))
    grid = fig.add_gridspec(2, 1, height_ratios=[4, 0.6], hspace=0.1, top=0.8, bottom=0.13, left=0.1, right=0.98)
    ax = fig.add_subplot(grid[0])
    colours = np.where(delta >= 0, "#b2182b", "#2166ac")
    ax.bar(np.arange(1, n + 1), delta, width=1.0, color=colours)
    ax.axhline(0, color="#333333", lw=0.6)
    for i in top[:5]:
        ax.annotate(
            str(i + 1),
            (i + 1, delta[i]),
            fontsize=6.5,
            ha="center",
            xytext=(0, 3 if delta[i] >= 0 else -9),
            textcoords="offset points",
        )
    _mark(ax, variant, label=True)
    ax.set_ylabel("change in\nimportance score")
    ax.tick_params(labelbottom=False)
    dom = fig.add_subplot(grid[1], sharex=ax)
    _domain_track(dom, domains, n)
    dom.set_xlabel("residue position")
    _heading(
        fig,
        title,
        "Red residues matter more to the model with the variant, blue ones less; the five "
        "largest changes are numbered.",
    )
    return fig


def _letter(ax: plt.Axes, letter: str, x: float, y: float, height: float) -> None:
    """Draw ``letter`` filling the box [x - 0.45, x + 0.45] x [y, y + height]."""
    if height <= 0.005:
        return
    path = TextPath((0, 0), letter, size=1, prop={"family": "DejaVu Sans", "weight": "bold"})
    box = path.get_extents()
    scale = Affine2D().translate(-box.x0, -box.y0).scale(0.9 / box.width, height / box.height).translate(x - 0.45, y)
    from matplotlib.patches import PathPatch

    ax.add_patch(PathPatch(scale.transform_path(path), color=_AA_COLOURS.get(letter, "#444444"), lw=0))


def sequence_logo(
    probs: np.ndarray, start: int, sequence: str, variant: Variant, important: list[int], title: str
) -> plt.Figure:
    """Stacked letters sized by the model's predicted probability of each residue at each position.

    ``probs`` is (window, 20) for positions ``start`` .. ``start + window - 1`` (0-based);
    ``important`` holds 0-based positions to highlight.
    """
    width = probs.shape[0]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * width + 1.5), 3.8))
    fig.subplots_adjust(top=0.8, bottom=0.22)
    for k in range(width):
        pos = start + k
        if pos in important:
            ax.add_patch(Rectangle((k - 0.5, 0), 1, 1.0, color="#fee391", lw=0, zorder=0))
        y = 0.0
        for a in np.argsort(probs[k]):
            _letter(ax, AMINO_ACIDS[a], k, y, probs[k, a])
            y += probs[k, a]
    v = variant.index - start
    ax.add_patch(Rectangle((v - 0.5, 0), 1, 1.0, fill=False, ec="#00a000", lw=2))
    p_wt, p_mt = (probs[v, AMINO_ACIDS.index(a)] for a in (variant.wild_type, variant.mutant))
    ax.text(
        v,
        1.02,
        f"{variant.wild_type} {p_wt:.3f} \u2192 {variant.mutant} {p_mt:.3f}",
        ha="center",
        fontsize=8,
        color="#006400",
    )
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(0, 1.1)
    ax.set_xticks(range(width), [f"{sequence[start + k]}\n{start + k + 1}" for k in range(width)], fontsize=7)
    ax.set_ylabel("predicted probability")
    ax.set_xlabel("wild-type residue and position (yellow: high importance score)")
    _heading(
        fig,
        title,
        "Tall letters are residues the model expects at each position when it is hidden; a "
        "short variant letter suggests an unusual change.",
    )
    return fig
