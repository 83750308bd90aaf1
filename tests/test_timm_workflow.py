"""The whole vision workflow on models that are not ImageNet-sized RGB CNNs: a ViT read as token
maps (and its class token as a non-spatial unit, `blocks.1@cls`), a 1-channel model with BatchNorm
at 32 px, a 4-channel model on a non-square input. Small random-weight timm models on a handful of
crops, so it runs in minutes on 2 cores."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from workflow_helpers import checkout, snakemake, write_config

CONFIG = {
    "seed": 0,
    "threads": 1,
    "datasets": {"photos": {"source": "bundled", "name": "photos", "n_crops": 12, "crop_px": 48}},
    "models": {
        "vit": {"architecture": "timm:vit_tiny_patch16_224", "allow_random": True, "image_size": 64},
        "grey": {"architecture": "timm:resnet18", "allow_random": True, "channels": 1, "image_size": 32},
        "rgba": {"architecture": "timm:resnet18", "allow_random": True, "channels": 4, "image_size": [32, 48]},
    },
    "analyses": [
        {"model": "vit", "dataset": "photos", "layers": ["patch_embed", "blocks.1", "blocks.1@cls"]},
        {"model": "grey", "dataset": "photos", "layers": ["layer2"]},
        {"model": "rgba", "dataset": "photos", "layers": ["layer2"]},
    ],
    "features": {"batch_size": 6, "shards": 1},
    "figures": {"dpi": 50},
    "patches": {"k": 3, "grid_channels": 3},
    "neighbors": {"k": 2, "n_queries": 2, "layers": {"vit": ["blocks.1@cls"]}},
    "embed": {"methods": ["pca"], "atlas_grid": 3, "layers": {"vit": ["blocks.1@cls"]}},
    "attribution": {"channels": 1, "n_images": 2, "layers": {"vit": []},  # DeconvNet needs ReLUs; ViTs use GELU
                    "cam_layers": {"vit": ["blocks.1"]}},
    "render": {
        "defaults": {"steps": 3, "snapshots": [1, 3]},
        "jobs": {
            "vit_block": {"model": "vit", "layer": "blocks.1", "channels": [0, 1], "size": 48},
            "vit_cls": {"model": "vit", "layer": "blocks.1@cls", "channels": [2], "size": 48},
            "grey_layer2": {"model": "grey", "layer": "layer2", "channels": [0]},  # size 128: rendered at 32
            "rgba_layer2": {"model": "rgba", "layer": "layer2", "channels": [0], "size": 48},
        },
    },
    "gallery": {"featured": ["vit/blocks.1@cls/2"]},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = checkout(tmp_path_factory.mktemp("timm"))
    result = snakemake(root, write_config(root / "timm.yaml", CONFIG))
    assert result.returncode == 0, result.stderr[-6000:]
    return root


def table(root, model):
    with open(root / "results" / "models" / model / "layers.tsv") as handle:
        return {row["layer"]: row for row in csv.DictReader(handle, delimiter="\t")}


@pytest.mark.integration
def test_vit_layers_are_token_maps_with_honest_fields(run):
    rows = table(run, "vit")
    assert rows["patch_embed"]["output_shape"] == "192x4x4" and rows["patch_embed"]["token_grid"] == "4x4"
    assert rows["patch_embed"]["rf_size"] == "16x16"  # each patch token sees its own patch only
    assert rows["blocks.1"]["token_grid"] == "4x4+1"  # the class token is the prefix
    assert rows["blocks.1"]["rf_size"] == "global"  # after attention every token sees the whole image
    maxima = np.load(run / "results" / "features" / "vit" / "photos" / "blocks.1" / "max.npy")
    assert maxima.shape == (12, 192)


@pytest.mark.integration
def test_every_view_ran_on_every_model(run):
    results = run / "results"
    for model, layer in (("vit", "blocks.1"), ("grey", "layer2"), ("rgba", "layer2")):
        top = np.load(results / "patches" / model / "photos" / layer / "top_max.npz")
        assert top["value"].shape == (top["value"].shape[0], 3)
        assert (results / "attribution" / model / "photos" / "class_maps.png").is_file()
        assert list((results / "embed" / model / "photos").rglob("*.png")), model
        assert list((results / "neighbors" / model / "photos").rglob("*.png")), model
    vit_top = np.load(results / "patches" / "vit" / "photos" / "blocks.1" / "top_max.npz")
    assert vit_top["y"].max() < 4 and vit_top["x"].max() < 4  # positions on the 4x4 token grid
    cam = np.load(results / "attribution" / "vit" / "photos" / "class_maps.npz")
    assert cam["Grad-CAM_blocks.1"].shape == (2, 4, 4) and cam["Grad-CAM_blocks.1"].max() > 0
    rgba_cam = np.load(results / "attribution" / "rgba" / "photos" / "class_maps.npz")
    assert next(v for k, v in rgba_cam.items() if k.startswith("Grad-CAM")).shape[1:] == (4, 6)  # 32x48 input


@pytest.mark.integration
def test_renders_fit_each_model(run):
    for model, layer, job, size in (("vit", "blocks.1", "vit_block", 48), ("grey", "layer2", "grey_layer2", 32),
                                    ("rgba", "layer2", "rgba_layer2", 48)):
        renders = sorted((run / "results" / "render" / model / layer / job / "renders").glob("*.png"))
        assert renders, job
        with Image.open(renders[0]) as image:
            assert image.size == (size, size) and np.asarray(image).std() > 0


@pytest.mark.integration
def test_the_class_token_runs_through_every_view_as_one_unit(run):
    results = run / "results"
    cls = results / "features" / "vit" / "photos" / "blocks.1@cls"
    assert np.load(cls / "max.npy").shape == (12, 192)
    np.testing.assert_array_equal(np.load(cls / "max.npy"), np.load(cls / "mean.npy"))  # one value per image
    assert not np.array_equal(np.load(cls / "max.npy"), np.load(cls.parent / "blocks.1" / "max.npy"))
    top = np.load(results / "patches" / "vit" / "photos" / "blocks.1@cls" / "top_max.npz")
    assert top["y"].max() == 0 and top["x"].max() == 0  # no position: the patch is the whole image
    with open(results / "units" / "vit" / "blocks.1@cls" / "patches_max" / "photos" / "0002.patches.json") as handle:
        assert "patches are whole images" in handle.read()
    assert list((results / "neighbors" / "vit" / "photos" / "blocks.1@cls").glob("*.png"))
    assert list((results / "embed" / "vit" / "photos" / "blocks.1@cls").glob("scatter_*.png"))
    renders = sorted((results / "render" / "vit" / "blocks.1@cls" / "vit_cls" / "renders").glob("*.png"))
    with Image.open(renders[0]) as image:
        assert image.size == (48, 48) and np.asarray(image).std() > 0
    page = results / "gallery" / "vit" / "blocks.1@cls" / "2.html"
    assert page.is_file() and "patches" in page.read_text()
    assert "blocks.1@cls" not in table(run, "vit")  # the layer table lists modules; the token is a unit of one
