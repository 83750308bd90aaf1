"""Shared fixtures: small real models and images made on the fly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from featvis.vision.models import load_model
from workflow_helpers import TINY_CONFIG, checkout, snakemake, write_config


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def lite0():
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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow (every stage, the gallery) on TINY_CONFIG in a fresh checkout, run once."""
    workdir = checkout(tmp_path_factory.mktemp("workflow"))
    config = write_config(workdir / "tiny.yaml", TINY_CONFIG)
    result = snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, config
