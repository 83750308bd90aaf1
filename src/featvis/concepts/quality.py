"""Quality numbers of a dictionary, each with the sentence that says how to read it.

R2, L0, frequencies and dead concepts come from streamed sums over every position of the dataset
(:class:`CodeStats`, which merge exactly across shards by adding); stability compares the atoms of
two fits with different seeds, matched one-to-one by the Hungarian method on cosine similarity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

HOW_TO_READ = {
    "r2": "Fraction of the layer's variance (over every position of every image) that the concepts reconstruct: "
          "1 is perfect, 0 is no better than the mean activation.",
    "l0": "Average number of concepts active at one position: small means each position is explained by a few "
          "concepts (sparse, easier to read); NMF codes are dense by construction, so expect it near the number "
          "of concepts there.",
    "dead_fraction": "Share of concepts that never fire on the dataset: they get no page; a large share means too "
                     "many concepts for this layer or too short a fit.",
    "stability": "Mean cosine similarity of the concept directions of two fits with different seeds, matched one "
                 "to one (Hungarian method): near 1 the concepts are a property of the layer, well below 1 they "
                 "depend on the seed and single concepts should not be trusted.",
    "frequency": "Per concept, the share of positions where it is active: a concept active nearly everywhere is a "
                 "background direction rather than a part.",
}


def matched_cosine(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean cosine of atoms ``a`` (K, C) and ``b`` (K', C) matched one-to-one by the Hungarian method
    (scipy's linear_sum_assignment, maximising total cosine); the per-atom cosine and the partner of
    each row of ``a``."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    cos = a @ b.T
    rows, cols = linear_sum_assignment(-cos)
    per_atom = np.full(len(a), np.nan)
    partner = np.full(len(a), -1, np.int64)
    per_atom[rows], partner[rows] = cos[rows, cols], cols
    return float(np.nanmean(per_atom)), per_atom, partner


@dataclass
class CodeStats:
    """Sums over positions (float64): enough for R2, L0, frequencies and class presence, exactly
    mergeable across shards."""

    positions: int
    sum_x: np.ndarray  # (C,)
    sum_x2: np.ndarray  # (C,)
    sse: float
    active: np.ndarray  # (K,) positions where the concept is active
    sum_code: np.ndarray  # (K,)
    class_sum: np.ndarray  # (L, K) per label, sum over images of the concept's maximum on the image
    class_count: np.ndarray  # (L,)

    @classmethod
    def empty(cls, channels: int, concepts: int, labels: int) -> CodeStats:
        z = np.zeros
        return cls(0, z(channels), z(channels), 0.0, z(concepts, np.int64), z(concepts), z((labels, concepts)),
                   z(labels, np.int64))

    def add(self, x: torch.Tensor, codes: torch.Tensor, recon: torch.Tensor, image_max: torch.Tensor | None = None,
            labels: np.ndarray | None = None) -> None:
        """(M, C) activations as fitted, their (M, K) codes and reconstruction; optionally (N, K) maxima
        per image with their label indices (-1: none)."""
        x64 = x.double()
        self.positions += len(x)
        self.sum_x += x64.sum(0).numpy()
        self.sum_x2 += (x64 ** 2).sum(0).numpy()
        self.sse += float(((x64 - recon.double()) ** 2).sum())
        self.active += (codes > 0).sum(0).numpy()
        self.sum_code += codes.double().sum(0).numpy()
        if image_max is not None and labels is not None and len(self.class_count):
            for row, label in zip(image_max.double().numpy(), labels):
                if label >= 0:
                    self.class_sum[label] += row
                    self.class_count[label] += 1

    def merged(self, other: CodeStats) -> CodeStats:
        return CodeStats(self.positions + other.positions, self.sum_x + other.sum_x, self.sum_x2 + other.sum_x2,
                         self.sse + other.sse, self.active + other.active, self.sum_code + other.sum_code,
                         self.class_sum + other.class_sum, self.class_count + other.class_count)

    def r2(self) -> float:
        total = float((self.sum_x2 - self.sum_x ** 2 / max(self.positions, 1)).sum())
        return 1.0 - self.sse / total if total > 0 else float("nan")

    def frequency(self) -> np.ndarray:
        return self.active / max(self.positions, 1)

    def l0(self) -> float:
        return float(self.active.sum() / max(self.positions, 1))

    def dead(self) -> np.ndarray:
        return np.flatnonzero(self.active == 0)

    def class_presence(self) -> np.ndarray:
        """(L, K) mean over a class's images of the concept's maximum (NaN for a class with no image)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.class_sum / self.class_count[:, None]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"positions": np.array(self.positions), "sum_x": self.sum_x, "sum_x2": self.sum_x2,
                "sse": np.array(self.sse), "active": self.active, "sum_code": self.sum_code,
                "class_sum": self.class_sum, "class_count": self.class_count}

    @classmethod
    def from_arrays(cls, a) -> CodeStats:
        return cls(int(a["positions"]), np.asarray(a["sum_x"]), np.asarray(a["sum_x2"]), float(a["sse"]),
                   np.asarray(a["active"]), np.asarray(a["sum_code"]), np.asarray(a["class_sum"]),
                   np.asarray(a["class_count"]))


def merge_stats(parts: Iterable[CodeStats]) -> CodeStats:
    parts = list(parts)
    out = parts[0]
    for part in parts[1:]:
        out = out.merged(part)
    return out


def top_loadings(atom: np.ndarray, n: int = 8) -> list[tuple[int, float]]:
    """The units (channels) that load most on a concept: largest absolute weights, signed."""
    order = np.argsort(-np.abs(atom), kind="stable")[:n]
    return [(int(c), float(atom[c])) for c in order]


def top_classes(presence: np.ndarray, concept: int, names: Sequence[str], n: int = 5) -> list[tuple[str, float]]:
    """Classes where the concept is most present, relative to its mean over classes."""
    column = presence[:, concept]
    ok = np.flatnonzero(np.isfinite(column))
    if not len(ok):
        return []
    mean = float(np.mean(column[ok])) or 1.0
    order = ok[np.argsort(-column[ok], kind="stable")][:n]
    return [(str(names[i]), float(column[i] / mean)) for i in order]
