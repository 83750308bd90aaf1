"""The full substitution scan: a score for all 19 substitutions at every position.

The score is the log ratio log p(substitute) - log p(wild type) (Meier et al. 2021), read from

* ``masked``: one pass per position with that position masked (batched: several masked
  copies of one window go through the model together), or
* ``wildtype``: the single unmasked wild-type pass (cheaper, less accurate).

Sequences longer than the model's limit are tiled as the importance stage tiles them; each
position is scored in the window where it sits farthest from an edge, so it sees the most
context on both sides.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from featvis.core.progress import Progress
from featvis.protein.attention import residue_log_probs, tile_windows
from featvis.protein.models import ProteinLM
from featvis.protein.scan_checks import SCAN_METHODS, ScanBudgetError  # noqa: F401 - re-exported
from featvis.protein.sequences import AA_INDEX, AMINO_ACIDS, Variant


def scan_tiles(length: int, window: int, overlap: int) -> list[tuple[int, int, list[int]]]:
    """Windows ``(start, end, positions)``: each 0-based position in the window where it is most central."""
    tiles = tile_windows(length, window, min(overlap, window - 1))
    owned: list[list[int]] = [[] for _ in tiles]
    for pos in range(length):
        margins = [min(pos - s, e - 1 - pos) if s <= pos < e else -1 for s, e in tiles]
        owned[int(np.argmax(margins))].append(pos)
    return [(s, e, p) for (s, e), p in zip(tiles, owned, strict=True) if p]


@torch.inference_mode()
def masked_scan_log_probs(
    lm: ProteinLM,
    sequence: str,
    window: int | None = None,
    overlap: int = 256,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> np.ndarray:
    """(L, 20) log-probabilities at every position with that position masked; ``progress`` counts positions.

    Only the output probabilities are needed, so the passes use the model's logits-only path
    (``ProteinLM.logits``: no attention weights, no per-layer outputs, the fastest attention)."""
    window = min(window or lm.max_residues, lm.max_residues)
    out = np.zeros((len(sequence), len(AMINO_ACIDS)), dtype=np.float32)
    for start, end, positions in scan_tiles(len(sequence), window, overlap):
        tokens = lm.encode(sequence[start:end])
        for k in range(0, len(positions), batch_size):
            chunk = positions[k : k + batch_size]
            batch = tokens.repeat(len(chunk), 1)
            rows = torch.arange(len(chunk))
            batch[rows, torch.tensor(chunk) - start + 1] = lm.mask_id  # +1: the leading special token
            logits = lm.logits(batch)
            for row, pos in enumerate(chunk):
                out[pos] = residue_log_probs(lm, logits[row])[pos - start].cpu().numpy()
            if progress is not None:
                progress.update(len(chunk))
    if progress is not None:
        progress.finish()
    return out


def log_ratios(log_probs: np.ndarray, sequence: str) -> np.ndarray:
    """(L, 20) scores log p(substitute) - log p(wild type); the wild-type cell of each row is 0."""
    wild = log_probs[np.arange(len(sequence)), [AA_INDEX[c] for c in sequence]]
    return (log_probs - wild[:, None]).astype(np.float32)


def substitutions(scan: np.ndarray, sequence: str) -> np.ndarray:
    """The 19 L substitution scores (wild-type cells left out)."""
    keep = np.ones(scan.shape, dtype=bool)
    keep[np.arange(len(sequence)), [AA_INDEX[c] for c in sequence]] = False
    return scan[keep]


def sensitivity(scan: np.ndarray, sequence: str) -> np.ndarray:
    """Per-position mutational sensitivity: minus the mean score of its 19 substitutions
    (high: the model finds most changes there implausible)."""
    return -(scan.sum(1) / (scan.shape[1] - 1)).astype(np.float32)  # the wild-type cell adds 0


def percentile(scan: np.ndarray, sequence: str, score: float) -> float:
    """Percent of all substitutions of the protein scoring at or below ``score`` (low: among the most damaging)."""
    return float(100.0 * np.mean(substitutions(scan, sequence) <= score + 1e-6))


def variant_score(scan: np.ndarray, variant: Variant) -> float:
    return float(scan[variant.index, AA_INDEX[variant.mutant]])


def scan_table(scan: np.ndarray, sequence: str) -> pd.DataFrame:
    """Every substitution as a row: position, wild_type, mutant, score (log ratio)."""
    rows = [
        (pos + 1, wt, aa, round(float(scan[pos, a]), 4))
        for pos, wt in enumerate(sequence)
        for a, aa in enumerate(AMINO_ACIDS)
        if aa != wt
    ]
    return pd.DataFrame(rows, columns=["position", "wild_type", "mutant", "score"])
