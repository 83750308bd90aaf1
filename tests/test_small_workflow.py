"""The whole vision workflow on the smallest dataset there is: two images (one transparent,
one flat grey), more shards than images, every embedding method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workflow_helpers import checkout, planned_rules, snakemake, write_config

pytestmark = pytest.mark.integration


def test_two_images_run_every_view(tmp_path):
    root = checkout(tmp_path / "featvis")
    yy, xx = np.mgrid[:40, :60]
    alpha = ((xx // 10 + yy // 10) % 2 * 255).astype(np.uint8)  # a design only in the alpha channel
    (root / "tiny/a").mkdir(parents=True)
    (root / "tiny/b").mkdir()
    Image.fromarray(np.dstack([np.zeros((40, 60, 3), np.uint8), alpha]), "RGBA").save(root / "tiny/a/alpha.png")
    Image.new("L", (50, 50), 200).save(root / "tiny/b/flat.png")
    config = {
        "threads": 1,
        "datasets": {"tiny": {"source": "folder", "path": "tiny"}},
        "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
        "analyses": [{"model": "lite", "dataset": "tiny", "layers": ["_blocks.4"]}],
        "features": {"shards": 3},
        "patches": {"source": "images", "shards": 3},
    }
    result = snakemake(root, write_config(root / "tiny.yaml", config))
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    results = root / "results"
    quality = pd.read_csv(results / "data/tiny/quality.csv", keep_default_na=False)
    flagged = dict(zip(quality["path"].map(lambda p: p.split("/")[-1]), quality["warning"] != ""))
    assert flagged == {"alpha.png": False, "flat.png": True}
    assert np.load(results / "features/lite/tiny/_blocks.4/max.npy").shape[0] == 2
    assert np.load(results / "patches/lite/tiny/_blocks.4/top_max.npz")["value"].shape[1] == 2  # k capped at N
    for method in ("pca", "tsne", "umap"):
        assert np.isfinite(np.load(results / f"embed/lite/tiny/_blocks.4/{method}.npy")).all()
        assert (results / f"embed/lite/tiny/_blocks.4/atlas_{method}.png").stat().st_size > 0
    assert len(pd.read_csv(results / "neighbors/lite/tiny/_blocks.4/neighbors.csv")) == 2 * 2  # k capped at N - 1
    assert (results / "attribution/lite/tiny/class_maps.png").stat().st_size > 0
    # a new image in the folder reruns the data check and what depends on it; nothing else is stale
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(root, root / "tiny.yaml", "-n"))
    Image.new("RGB", (30, 40), (10, 200, 30)).save(root / "tiny/b/green.png")
    planned = planned_rules(snakemake(root, root / "tiny.yaml", "-n"))
    assert {"data", "features_shard", "gallery_layer"} <= planned, planned
