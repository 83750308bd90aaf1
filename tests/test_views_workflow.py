"""The real workflow on a tiny config for the view stages (patches, neighbors, embed,
attribution): outputs, exact shard merge, and byte-identical figures on a forced rerun."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from featvis.core.io import sha256_file
from workflow_helpers import checkout, snakemake

pytestmark = pytest.mark.integration

# the per-(model, dataset) rules of the short per-layer stages are named <stage>__<model>__<dataset>
VIEW_RULES = ["patches_shard", "attribution_cam"] + [
    f"{stage}__efficientnet_lite0__photos" for stage in ("patches_merge", "patches_figures", "neighbors",
                                                         "embed_method", "embed_figures", "attribution_deconv")]

TINY = {
    "seed": 0,
    "threads": 1,
    "device": "cpu",
    "datasets": {"photos": {"source": "bundled", "name": "photos", "n_crops": 36, "crop_px": 64}},
    "models": {"efficientnet_lite0": {"architecture": "efficientnet_lite0", "image_size": 64}},
    "analyses": [{"model": "efficientnet_lite0", "dataset": "photos", "layers": ["_blocks.4"]}],
    "features": {"batch_size": 16, "shards": 1},
    "figures": {"dpi": 60, "filter_cell_inches": 0.6},
    "patches": {"k": 4, "source": "images", "shards": 2, "batch_size": 8, "grid_channels": 4},
    "neighbors": {"k": 3, "index": "faiss_flat", "metrics": ["l2", "cosine"], "queries": [0, "rocket/00017.png"]},
    "embed": {"methods": ["pca", "tsne"], "perplexity": 5, "atlas_grid": 6, "atlas_cell_px": 16},
    "attribution": {"channels": 2, "layers": {"efficientnet_lite0": ["_blocks.4"]},
                    "cam_layers": {"efficientnet_lite0": ["_blocks.4"]}, "n_images": 2},
}


PAIR = "results/{stage}/efficientnet_lite0/photos"
TARGETS = [  # the view stages only (not the filter grid or layer table)
    f"{PAIR.format(stage='patches')}/_blocks.4/grid_max.png",
    f"{PAIR.format(stage='neighbors')}/_blocks.4/neighbors.csv",
    f"{PAIR.format(stage='embed')}/_blocks.4/coordinates.csv",
    f"{PAIR.format(stage='attribution')}/_blocks.4/deconvnet.png",
    f"{PAIR.format(stage='attribution')}/class_maps.png",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = checkout(tmp_path_factory.mktemp("views"))
    config = workdir / "views.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = snakemake(workdir, config, *TARGETS)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir, config


def test_view_outputs(run):
    workdir, _ = run
    res = workdir / "results"
    pair = "efficientnet_lite0/photos"
    layer = "_blocks.4"
    top = np.load(res / f"patches/{pair}/{layer}/top_max.npz")
    assert top["value"].shape[1] == 4 and (np.diff(top["value"], axis=1) <= 0).all()
    # every channel has its patch strip under the one unit key (model, layer, channel)
    strips = sorted((res / f"units/efficientnet_lite0/{layer}/patches_max/photos").glob("*.patches.jpg"))
    assert [p.name for p in strips] == [f"{c:04d}.patches.jpg" for c in range(top["value"].shape[0])]
    # two mining shards merged = the features stage's own per-image maxima, ranked
    maxima = np.load(res / f"features/{pair}/{layer}/max.npy")
    np.testing.assert_allclose(top["value"], -np.sort(-maxima.T, axis=1)[:, :4], rtol=1e-5, atol=1e-5)
    assert (res / f"neighbors/{pair}/{layer}/cosine.png").stat().st_size > 1000
    table = (res / f"neighbors/{pair}/{layer}/neighbors.csv").read_text().splitlines()
    assert len(table) == 1 + 2 * 2 * 3  # header + metrics x queries x k
    coords = (res / f"embed/{pair}/_blocks.4/coordinates.csv").read_text().splitlines()
    assert coords[0].endswith("pca_1,pca_2,tsne_1,tsne_2") and len(coords) == 37
    assert (res / f"attribution/{pair}/_blocks.4/deconvnet.png").exists()
    assert '"cam": true' in (res / f"attribution/{pair}/class_maps.json").read_text()


def test_figures_byte_identical_on_rerun(run):
    workdir, config = run
    figures = sorted(p for stage in ("patches", "neighbors", "embed", "attribution")
                     for p in (workdir / "results" / stage).rglob("*.png"))
    before = {p: sha256_file(p) for p in figures}
    result = snakemake(workdir, config, *TARGETS, "--forcerun", *VIEW_RULES)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "patches_shard" in result.stderr + result.stdout
    assert {p: sha256_file(p) for p in figures} == before


def test_bad_layer_choice_is_named(run, tmp_path):
    workdir, _ = run
    bad = {**TINY, "embed": {"layers": {"efficientnet_lite0": ["_blocks.1"]}}}
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(bad))
    result = snakemake(workdir, config, "-n")
    assert result.returncode != 0
    assert "embed.layers.efficientnet_lite0" in result.stderr + result.stdout
