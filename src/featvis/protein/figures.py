"""Clinician-facing figures. Words used: "importance score", "model layer".

Every figure carries a one-line plain-language reading under its title.
"""

from __future__ import annotations

import textwrap

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


MAX_WIDTH = 14.0  # inches: the page shows figures at about this width, so text stays legible


def _wide(length: int) -> float:
    """Figure width for a sequence-long axis, capped so text is not shrunk on the page."""
    return min(MAX_WIDTH, max(9.0, length * 0.07))


def _bar_limits(ax: plt.Axes, values: np.ndarray, headroom: float = 0.1) -> None:
    """Y range from the data (not from 0), so scores near 1.0 do not look like a solid slab."""
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.08 * (high - low) or 0.05 * max(abs(high), 1.0)
    ax.set_ylim(low - pad, high + pad + headroom * (high - low + pad))


def _heading(fig: plt.Figure, title: str, reading: str) -> None:
    """Title and its one-line reading, placed in inches from the top so they never overlap."""
    height = fig.get_figheight()
    width = int(fig.get_figwidth() * 15)  # characters of 8.5 pt italic per line, with margin
    reading = "\n".join(textwrap.fill(line, width) for line in reading.split("\n"))
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
    fig = plt.figure(figsize=(_wide(length), 5.6))
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
    _bar_limits(prof, overall)
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
        "1.0 (dotted) on the lower panel is an average residue; its axis starts near the lowest score.",
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
    _bar_limits(ax, np.concatenate([wild[lo:hi], variant_scores[lo:hi]]), headroom=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper right", ncol=2)  # in the headroom, above the bars
    _heading(
        fig,
        title,
        f"Residues within {window} positions of {variant.label}; the shaded column is the changed residue.",
    )
    return fig


def pair_maps(wild: np.ndarray, mutant: np.ndarray, variant: Variant, title: str, what: str) -> plt.Figure:
    """Wild-type and variant residue-pair maps side by side, with their difference.

    Pairs no window covered (tiled long sequences) are NaN and drawn grey, with a note.
    """
    diff = mutant - wild
    fig, axes = plt.subplots(1, 3, figsize=(MAX_WIDTH, 5.3))
    fig.subplots_adjust(top=0.8, bottom=0.12, wspace=0.55, left=0.05, right=0.92)
    both = np.concatenate([wild.ravel(), mutant.ravel()])
    high = np.nanpercentile(both, 99)
    low = min(0.0, np.nanpercentile(both, 1))
    n = wild.shape[0]
    extent = (0.5, n + 0.5, n + 0.5, 0.5)
    sequential = plt.get_cmap("Oranges").with_extremes(bad="#d0d0d0")
    for ax, data, name in ((axes[0], wild, "wild type"), (axes[1], mutant, f"variant {variant.label}")):
        im = ax.imshow(data, cmap=sequential, vmin=low, vmax=high, interpolation="nearest", extent=extent)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03, label="importance score")
    bound = float(np.nanmax(np.abs(diff))) or 1.0
    diverging = plt.get_cmap("RdBu_r").with_extremes(bad="#d0d0d0")
    im = axes[2].imshow(diff, cmap=diverging, norm=TwoSlopeNorm(0, -bound, bound), interpolation="nearest",
                        extent=extent)
    axes[2].set_title("variant minus wild type", fontsize=9)
    fig.colorbar(im, ax=axes[2], fraction=0.046, pad=0.03, label="change in\nimportance score")
    for ax in axes:
        ax.set_xlabel("residue position (is used)")
        ax.set_ylabel("residue position (uses)")
        ax.axvline(variant.position, color="#00a000", lw=0.6, ls="--")
        ax.axhline(variant.position, color="#00a000", lw=0.6, ls="--")
    reading = (
        f"How strongly each residue draws on each other residue ({what}); on the right, red "
        "pairs gain and blue pairs lose importance with the variant."
    )
    if np.isnan(wild).any():
        reading += "\nGrey corners: this long protein was read in overlapping windows; no window holds both residues."
    _heading(fig, title, reading)
    return fig


def importance_change(
    delta: np.ndarray, domains: list[Domain], variant: Variant, top: list[int], title: str
) -> plt.Figure:
    """Change in each residue's importance score (variant minus wild type) along the sequence."""
    n = len(delta)
    fig = plt.figure(figsize=(_wide(n), 3.8))
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


# ---------------------------------------------------------------- substitution scan

_SCAN_NOTE = "score: log ratio of substitute to wild type; below 0 (red): the model finds the change less plausible"


def _scan_image(ax: plt.Axes, scan: np.ndarray, first: int, bound: float):
    """Positions along x (1-based from ``first``), the 20 amino acids down y; diverging around 0."""
    cmap = plt.get_cmap("RdBu").with_extremes(bad="#ffffff")
    return ax.imshow(
        scan.T, aspect="auto", cmap=cmap, norm=TwoSlopeNorm(0, -bound, bound), interpolation="nearest",
        extent=(first - 0.5, first + scan.shape[0] - 0.5, len(AMINO_ACIDS) - 0.5, -0.5),
    )  # fmt: skip


def _scan_bound(scan: np.ndarray) -> float:
    return float(np.nanpercentile(np.abs(scan), 99)) or 1.0


def _outline(ax: plt.Axes, variant: Variant, lw: float = 1.6) -> None:
    ax.add_patch(Rectangle((variant.position - 0.5, AMINO_ACIDS.index(variant.mutant) - 0.5), 1, 1, fill=False,
                           ec="#00a000", lw=lw, zorder=3))  # fmt: skip


def scan_heatmap(scan: np.ndarray, sequence: str, domains: list[Domain], variants: list[Variant], title: str):
    """Every substitution at every position, the reported variants outlined, domains below."""
    length = len(sequence)
    fig = plt.figure(figsize=(_wide(length), 5.4))
    grid = fig.add_gridspec(2, 2, height_ratios=[5, 0.45], width_ratios=[60, 1], hspace=0.12, wspace=0.02,
                            top=0.82, bottom=0.1, left=0.09, right=0.93)  # fmt: skip
    ax = fig.add_subplot(grid[0, 0])
    masked = scan.copy()
    masked[np.arange(length), [AMINO_ACIDS.index(c) for c in sequence]] = np.nan  # wild type: blank
    image = _scan_image(ax, masked, 1, _scan_bound(scan))
    ax.set_yticks(range(len(AMINO_ACIDS)), list(AMINO_ACIDS), fontsize=7)
    ax.set_ylabel("substitute residue")
    ax.tick_params(labelbottom=False)
    for variant in variants:
        _outline(ax, variant)
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]), label="variant effect score")
    dom = fig.add_subplot(grid[1, 0], sharex=ax)
    _domain_track(dom, domains, length)
    dom.set_xlabel("residue position")
    _heading(fig, title, "Every possible single substitution; white: the wild-type residue; green boxes: the "
                         "reported variants. " + _SCAN_NOTE + ".")  # fmt: skip
    return fig


def scan_zoom(scan: np.ndarray, sequence: str, variant: Variant, window: int, title: str) -> plt.Figure:
    """The scan around one variant, every cell written out."""
    lo, hi = max(0, variant.index - window), min(len(sequence), variant.index + window + 1)
    part = scan[lo:hi]
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * (hi - lo) + 2.2), 7.2))
    fig.subplots_adjust(top=0.86, bottom=0.1, left=0.1, right=0.9)
    image = _scan_image(ax, part, lo + 1, _scan_bound(scan))
    for k in range(hi - lo):
        for a, aa in enumerate(AMINO_ACIDS):
            wild = sequence[lo + k] == aa
            ax.text(lo + 1 + k, a, "wt" if wild else f"{part[k, a]:.1f}", ha="center", va="center", fontsize=6.5,
                    color="#000000" if wild or abs(part[k, a]) < 0.6 * _scan_bound(scan) else "#ffffff")
    ax.set_yticks(range(len(AMINO_ACIDS)), list(AMINO_ACIDS), fontsize=8)
    ax.set_xticks(range(lo + 1, hi + 1), [f"{sequence[i]}\n{i + 1}" for i in range(lo, hi)], fontsize=7)
    ax.set_ylabel("substitute residue")
    ax.set_xlabel("wild-type residue and position")
    _outline(ax, variant, lw=2.4)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="variant effect score")
    _heading(fig, title, f"All substitutions within {window} positions of {variant.label} (green box). "
                         + _SCAN_NOTE + ".")  # fmt: skip
    return fig


def scatter(x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str, title: str, reading: str,
            highlight: dict[str, tuple[float, float]] | None = None) -> plt.Figure:
    """A plain scatter with labelled highlighted points (the reported variants)."""
    fig, ax = plt.subplots(figsize=(7.0, 5.4))
    fig.subplots_adjust(top=0.8, bottom=0.12, left=0.13, right=0.96)
    ax.scatter(x, y, s=9, color="#636363", alpha=0.7, lw=0)
    for label, (px, py) in (highlight or {}).items():
        ax.scatter([px], [py], s=40, facecolor="none", edgecolor="#00a000", lw=1.5)
        ax.annotate(label, (px, py), xytext=(4, 4), textcoords="offset points", fontsize=8, color="#006400")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    _heading(fig, title, reading)
    return fig


def structure_snapshot(ca: np.ndarray, values: np.ndarray, variant: Variant | None, title: str) -> plt.Figure:
    """A still of the C-alpha trace (NaN rows: residues without coordinates) on its two widest axes,
    coloured by ``values``; for the printable page, where the interactive viewer cannot go."""
    present = np.isfinite(ca).all(1)
    centred = ca[present] - ca[present].mean(0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    flat = np.full((len(ca), 2), np.nan)
    flat[present] = centred @ axes[:2].T
    fig, ax = plt.subplots(figsize=(5.0, 4.6))
    fig.subplots_adjust(top=0.84, bottom=0.04, left=0.04, right=0.96)
    finite = values[present]
    norm = plt.Normalize(float(np.nanmin(finite)), float(np.nanmax(finite)))
    cmap = plt.get_cmap("Oranges")
    for i in range(len(ca) - 1):
        if present[i] and present[i + 1]:
            ax.plot(flat[i : i + 2, 0], flat[i : i + 2, 1], color=cmap(norm(values[i])), lw=2.2,
                    solid_capstyle="round")  # fmt: skip
    if variant is not None and present[variant.index]:
        ax.scatter(*flat[variant.index], s=90, facecolor="none", edgecolor="#00a000", lw=2, zorder=3)
        ax.annotate(variant.label, flat[variant.index], xytext=(6, 6), textcoords="offset points", fontsize=8,
                    color="#006400")  # fmt: skip
    ax.set_aspect("equal")
    ax.axis("off")
    _heading(fig, title, "Backbone seen flat; darker: higher importance score; green ring: the variant.")
    return fig
