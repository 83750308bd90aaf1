"""Feature tables with NaN or infinite rows, refused before a map or an index is built on them."""

from __future__ import annotations

import numpy as np


def require_finite(features: np.ndarray, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming the images (rows) of ``features`` that hold NaN or infinite values."""
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if len(bad):
        raise error(
            f"{len(bad)} of {len(features)} images have NaN or infinite features (rows "
            f"{', '.join(map(str, bad[:10]))}{' ...' if len(bad) > 10 else ''}): the model gave non-finite "
            "activations for them (the features stage's meta.json lists them under 'nonfinite'); remove "
            "those images from the dataset or fix the model"
        )
