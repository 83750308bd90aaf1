"""Faults in per-shard jobs: a failure names the shard and its images, more shards than images
merge to the same result as one shard, and an image gone after the data stage is named on the
console with what to do; an empty dataset stops the run at start."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from workflow_helpers import ROOT, checkout, snakemake, write_config

sys.path.insert(0, str(ROOT / "scripts"))
from shard_job import ShardJobError, describe_shard, naming_shard, shard_range  # noqa: E402

PATHS = [f"photos/{i}.jpg" for i in range(8000)]


def test_shard_description_names_its_image_range():
    start, stop = shard_range(8000, 8, 2)
    assert describe_shard("features", 2, 8, PATHS, start, stop) == \
        "features shard 3 of 8 (images 2000-2999 of 8000, first photos/2000.jpg)"
    assert shard_range(2, 5, 1) == (1, 2) and shard_range(2, 5, 4) == (2, 2)  # past the last image: empty
    assert describe_shard("patches", 4, 5, PATHS[:2], 2, 2) == "patches shard 5 of 5 (no images: 2 images for 5 shards)"


def test_a_failure_is_reraised_naming_the_shard_with_its_cause():
    with pytest.raises(ShardJobError) as caught:
        with naming_shard("features shard 1 of 2 (images 0-9 of 20, first a.png)"):
            raise FileNotFoundError("a.png is gone")
    assert str(caught.value) == \
        "features shard 1 of 2 (images 0-9 of 20, first a.png) failed: FileNotFoundError: a.png is gone"
    assert isinstance(caught.value.__cause__, FileNotFoundError)


# --- real workflow runs -----------------------------------------------------------------------

@pytest.fixture
def root(tmp_path):
    root = checkout(tmp_path / "featvis")
    rng = np.random.default_rng(0)
    for i, label in enumerate(["a", "a", "b"]):
        (root / "imgs" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "imgs" / label / f"{i}.png")
    return root


def tiny(dataset: dict, shards: int = 1) -> dict:
    return {
        "threads": 1,
        "datasets": {"tiny": dataset},
        "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
        "analyses": [{"model": "lite", "dataset": "tiny", "layers": ["_blocks.4"]}],
        # batch 1: every image is alone in its forward pass whatever the shards, so results match bit for bit
        "features": {"shards": shards, "batch_size": 1, "workers": 1},
        "patches": {"source": "images", "shards": shards, "batch_size": 1, "k": 2},
    }


def console(result) -> str:
    return result.stdout + result.stderr


@pytest.mark.integration
def test_more_shards_than_images_merge_to_the_one_shard_result(root):
    targets = ["results/features/lite/tiny/_blocks.4/max.npy", "results/features/lite/tiny/_blocks.4/argmax.npy",
               "results/features/lite/tiny/_blocks.4/mean.npy", "results/patches/lite/tiny/_blocks.4/top_max.npz"]
    outputs = {}
    for shards in (5, 1):
        config = write_config(root / "c.yaml", tiny({"source": "folder", "path": "imgs"}, shards))
        result = snakemake(root, config, *targets)
        assert result.returncode == 0, console(result)[-4000:]
        outputs[shards] = {t: (root / t).read_bytes() for t in targets[:3]}
        top = np.load(root / targets[3])
        outputs[shards]["top"] = {key: top[key].tobytes() for key in ("value", "image", "y", "x")}
        if shards == 5:
            assert sorted(p.name for p in (root / "results/features/lite/tiny/shards").iterdir()) == list("01234")
            past_the_end = (root / "results/features/lite/tiny/shards/4").iterdir()
            assert [p.name for p in past_the_end if not p.name.startswith(".")] == []  # Snakemake's stamp aside
            assert np.load(root / targets[0]).shape[0] == 3
    assert outputs[5] == outputs[1]


@pytest.mark.integration
def test_image_gone_after_the_data_stage_is_named_on_the_console(root):
    (root / "list.csv").write_text("path,label\nimgs/a/0.png,a\nimgs/a/1.png,a\nimgs/b/2.png,b\n")
    config = write_config(root / "c.yaml", tiny({"source": "csv", "path": "list.csv"}))
    result = snakemake(root, config, "results/data/tiny/manifest.csv")
    assert result.returncode == 0, console(result)[-4000:]
    (root / "imgs/a/1.png").unlink()  # the CSV is unchanged: Snakemake has no reason to rerun the data stage
    result = snakemake(root, config, "results/features/lite/tiny/_blocks.4/max.npy")
    out = console(result)
    assert result.returncode != 0
    assert "features shard 1 of 1 (images 0-2 of 3, first imgs/a/0.png) failed: MissingImageError: " \
           "image imgs/a/1.png is in the manifest but no longer on disk" in out, out[-4000:]
    assert "--forcerun data" in out
    assert not (root / "results/features/lite/tiny/shards/0").exists()  # no partial output is kept


@pytest.mark.integration
def test_empty_folder_dataset_stops_the_run_at_start(root):
    shutil.rmtree(root / "imgs" / "b")
    for image in (root / "imgs" / "a").iterdir():
        image.unlink()
    result = snakemake(root, write_config(root / "c.yaml", tiny({"source": "folder", "path": "imgs"})))
    assert result.returncode != 0
    message = "datasets.tiny: dataset tiny has no images in class sub-folders of imgs (looked for files ending"
    assert message in console(result)
    assert not (root / "logs").exists()  # no job ran
