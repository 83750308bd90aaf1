"""Figures of the Distill article, drawn from finished renders (all via save_figure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from featvis.core.figures import image_grid


def channel_grid(images: np.ndarray, channels: Sequence[int], title: str, ncols: int = 8) -> plt.Figure:
    """One render per channel of a layer."""
    return image_grid(list(images), min(ncols, len(images)), [f"ch {c}" for c in channels],
                      cell_inches=1.2, suptitle=title)


def named_grid(images: np.ndarray, names: Sequence[str], title: str, ncols: int = 8) -> plt.Figure:
    """One render per named item (a job's objectives), the names as titles."""
    return image_grid(list(images), min(ncols, len(images)), list(names), cell_inches=1.2, suptitle=title)


def diversity_rows(images: np.ndarray, channels: Sequence[int], copies: int, title: str) -> plt.Figure:
    """One row per channel, its diverse copies side by side."""
    titles = [f"ch {c} #{k}" for c in channels for k in range(copies)]
    return image_grid(list(images), copies, titles, cell_inches=1.2, suptitle=title)


def addition_figure(images: np.ndarray, pairs: Sequence[tuple[int, int]], title: str) -> plt.Figure:
    """Rows of a | a + b | b."""
    titles = [t for a, b in pairs for t in (f"ch {a}", f"ch {a} + ch {b}", f"ch {b}")]
    return image_grid(list(images), 3, titles, cell_inches=1.4, suptitle=title)


def interpolation_strip(images: np.ndarray, a: int, b: int, title: str) -> plt.Figure:
    """Frames from channel a to channel b."""
    n = len(images)
    titles = [f"ch {a}" if i == 0 else f"ch {b}" if i == n - 1 else f"{i / (n - 1):.2f}" for i in range(n)]
    return image_grid(list(images), n, titles, cell_inches=1.2, suptitle=title)


def regularization_figure(regimes: Mapping[str, np.ndarray], channels: Sequence[int],
                          title: str) -> plt.Figure:
    """Rows are channels, columns the regimes (none / frequency penalty / robustness / preconditioning)."""
    names = list(regimes)
    images = [regimes[name][i] for i in range(len(channels)) for name in names]
    titles = [f"{name}\nch {c}" for c in channels for name in names]
    return image_grid(images, len(names), titles, cell_inches=1.5, suptitle=title)


def progress_figure(snapshots: Mapping[int, np.ndarray], labels: Sequence[str], title: str) -> plt.Figure:
    """Rows are renders, columns the images after each snapshot step."""
    steps = sorted(snapshots)
    images = [snapshots[s][i] for i in range(len(labels)) for s in steps]
    titles = [f"{labels[i]} step {s}" for i in range(len(labels)) for s in steps]
    return image_grid(images, len(steps), titles, cell_inches=1.2, suptitle=title)
