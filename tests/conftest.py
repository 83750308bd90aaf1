"""Shared fixtures: small real models and images made on the fly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def lite0():
    from featvis.models import load_model

    return load_model("efficientnet_lite0")


def write_image(path, size=(32, 32), color=(200, 30, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else color[0]).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path):
    """Two classes, three images each, distinct colours."""
    root = tmp_path / "images"
    for label, color in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        for i in range(3):
            write_image(root / label / f"{i}.png", color=tuple(c + 10 * i for c in color))
    return root
