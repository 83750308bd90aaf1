"""Bring-your-own assay: a deep mutational scan in the ProteinGym CSV layout.

Columns ``mutant`` (``A12G``, 1-based; multi-mutants joined by ``:`` as in ProteinGym) and
``DMS_score`` (higher: fitter). A multi-mutant is scored as the **sum** of its single
substitutions' scan scores (the additive model ProteinGym uses for masked-marginal scores).
Every mutant's wild type is checked against the sequence before anything runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from featvis.protein.sequences import AA_INDEX, SequenceError, check_variant, parse_variant

COLUMNS = ("mutant", "DMS_score")


def read_assay(path: str | os.PathLike, sequence: str) -> pd.DataFrame:
    """The assay's ``mutant`` and ``DMS_score`` columns, every mutant checked against ``sequence``."""
    path = Path(path)
    if not path.is_file():
        raise SequenceError(f"DMS assay not found: {path}")
    table = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise SequenceError(f"DMS assay {path} lacks column(s) {missing}; the ProteinGym layout has mutant, DMS_score")
    table = table[list(COLUMNS)].dropna()
    if table.empty:
        raise SequenceError(f"DMS assay {path} has no rows with both mutant and DMS_score")
    for number, mutant in zip(table.index + 2, table.mutant, strict=True):  # +2: header line, 1-based
        for part in str(mutant).split(":"):
            try:
                check_variant(sequence, parse_variant(part))
            except SequenceError as err:
                raise SequenceError(f"DMS assay {path} line {number}: {err}") from None
    return table.reset_index(drop=True)


def model_scores(assay: pd.DataFrame, scan: np.ndarray) -> np.ndarray:
    """The scan's score of each assay mutant (multi-mutants: the sum over their substitutions)."""
    scores = []
    for mutant in assay.mutant:
        parts = [parse_variant(p) for p in str(mutant).split(":")]
        scores.append(sum(float(scan[v.index, AA_INDEX[v.mutant]]) for v in parts))
    return np.asarray(scores, dtype=np.float64)
