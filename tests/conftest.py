"""Shared fixtures: a tiny image set on disk and a small, seeded real model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from featvis.models import load_model


@pytest.fixture(scope="session")
def tiny_images(tmp_path_factory) -> pd.DataFrame:
    """24 random 28x28 grayscale PNGs in 3 classes, as a manifest-like table."""
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        label = str(i % 3)
        pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        path = root / label / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(pixels, mode="L").save(path)
        rows.append({"path": str(path), "label": label, "split": "all", "sha1": ""})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def mnist_model():
    torch.manual_seed(0)
    return load_model({"architecture": "mnist_cnn", "allow_random": True}, "mnist_cnn")
