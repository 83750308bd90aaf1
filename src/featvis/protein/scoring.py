"""Variant effect scores from a masked language model.

Both scores are the log-likelihood ratio log p(variant residue) - log p(wild-type residue)
at the variant position (Meier et al. 2021):

* masked marginal: the position is masked, one forward pass per position;
* wild-type marginal: read from the unmasked wild-type pass (one pass for all variants).

Negative means the model finds the variant residue less plausible than the wild type.
"""

from __future__ import annotations

import numpy as np
import torch

from featvis.protein.attention import residue_log_probs
from featvis.protein.models import ProteinLM
from featvis.protein.sequences import AMINO_ACIDS, Variant, check_variant

AA_INDEX = {c: i for i, c in enumerate(AMINO_ACIDS)}


def window_around(length: int, index: int, window: int) -> tuple[int, int]:
    """A [start, end) span of at most ``window`` residues holding ``index``, centred where possible."""
    if length <= window:
        return 0, length
    start = min(max(0, index - window // 2), length - window)
    return start, start + window


@torch.inference_mode()
def masked_log_probs(lm: ProteinLM, sequence: str, indices: list[int], batch_size: int = 8) -> np.ndarray:
    """(len(indices), 20) log-probabilities at each 0-based index with that residue masked."""
    out = np.zeros((len(indices), len(AMINO_ACIDS)), dtype=np.float32)
    order = list(enumerate(indices))
    for chunk_start in range(0, len(order), batch_size):
        chunk = order[chunk_start : chunk_start + batch_size]
        # Sequences beyond the model's limit are scored in a window centred on the position.
        spans = [window_around(len(sequence), i, lm.max_residues) for _, i in chunk]
        by_span: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for (row, index), span in zip(chunk, spans, strict=True):
            by_span.setdefault(span, []).append((row, index))
        for (start, end), items in by_span.items():
            tokens = lm.encode(sequence[start:end]).repeat(len(items), 1)
            for k, (_, index) in enumerate(items):
                tokens[k, index - start + 1] = lm.mask_id
            logits = lm.logits(tokens)
            for k, (row, index) in enumerate(items):
                out[row] = residue_log_probs(lm, logits[k])[index - start].cpu().numpy()
    return out


def masked_marginal(lm: ProteinLM, sequence: str, variants: list[Variant]) -> list[float]:
    """Masked-marginal score of each variant (one masked pass per distinct position)."""
    for variant in variants:
        check_variant(sequence, variant)
    positions = sorted({v.index for v in variants})
    table = dict(zip(positions, masked_log_probs(lm, sequence, positions), strict=True))
    return [float(table[v.index][AA_INDEX[v.mutant]] - table[v.index][AA_INDEX[v.wild_type]]) for v in variants]


def wildtype_marginal(log_probs: np.ndarray, sequence: str, variants: list[Variant]) -> list[float]:
    """Wild-type-marginal score of each variant from the wild-type pass's (L, 20) log-probabilities."""
    scores = []
    for variant in variants:
        check_variant(sequence, variant)
        row = log_probs[variant.index]
        scores.append(float(row[AA_INDEX[variant.mutant]] - row[AA_INDEX[variant.wild_type]]))
    return scores
