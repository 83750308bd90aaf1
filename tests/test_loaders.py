"""Loader workers give the same batches and features as decoding in-process; a missing or
corrupt image is named; the data stage reads and decodes each image once; empty datasets
are clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from featvis.core.config import ConfigError
from featvis.vision import data
from featvis.vision.checks import check_datasets
from featvis.vision.data import (
    CorruptImageError,
    ManifestError,
    MissingImageError,
    build_photos,
    check_image,
    check_images,
    folder_rows,
    image_quality,
    iter_batches,
)
from featvis.vision.features import LoopTime, extract_shard
from featvis.vision.mining import mine_topk
from featvis.vision.models import load_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    """Real photos (bundled crops) plus a transparent and a greyscale image: 27 images."""
    root = tmp_path_factory.mktemp("photos")
    paths = build_photos(root / "photos", n_crops=25, crop_px=72)["path"].tolist()
    yy, xx = np.mgrid[:40, :60]
    alpha = ((xx // 10 + yy // 10) % 2 * 255).astype(np.uint8)
    Image.fromarray(np.dstack([np.zeros((40, 60, 3), np.uint8), alpha]), "RGBA").save(root / "alpha.png")
    Image.fromarray((xx * 4).astype(np.uint8), "L").save(root / "grey.jpg")
    return [*paths, str(root / "alpha.png"), str(root / "grey.jpg")]


@pytest.fixture(scope="module")
def small_lite():
    return load_model({"architecture": "efficientnet_lite0", "image_size": 64}, "lite")


def as_bytes(result: dict) -> dict:
    return {(layer, stat): (a.dtype, a.shape, a.tobytes()) for layer, stats in result.items()
            for stat, a in stats.items()}


def test_workers_give_the_same_batches_in_order(photos, small_lite):
    inline = list(iter_batches(photos, small_lite.preprocess, 8))
    loaded = list(iter_batches(photos, small_lite.preprocess, 8, workers=2))
    assert [start for start, _ in loaded] == [0, 8, 16, 24] == [start for start, _ in inline]
    assert [b.shape[0] for _, b in loaded] == [8, 8, 8, 3]
    for (_, a), (_, b) in zip(inline, loaded):
        assert a.dtype == b.dtype == torch.float32 and torch.equal(a, b)


def test_workers_give_byte_identical_features_and_patches(photos, small_lite):
    layers = ["_blocks.4", "_conv_head"]
    whole = extract_shard(small_lite, photos, layers, CPU, batch_size=8, progress=False, workers=0)
    for workers in (1, 2):
        again = extract_shard(small_lite, photos, layers, CPU, batch_size=8, progress=False, workers=workers)
        assert as_bytes(again) == as_bytes(whole)
    mined = [mine_topk(small_lite, photos, layers, 4, CPU, batch_size=8, progress=False, workers=w) for w in (0, 2)]
    assert as_bytes(mined[0]) == as_bytes(mined[1])


def test_loop_time_counts_images_and_forward_share(photos, small_lite, caplog):
    timing = LoopTime()
    with caplog.at_level("INFO"):
        extract_shard(small_lite, photos, ["_blocks.4"], CPU, batch_size=8, progress=False, workers=1, timing=timing)
    assert timing.images == len(photos)
    assert 0 < timing.forward_s <= timing.wall_s and timing.busy == timing.forward_s / timing.wall_s
    assert f"{len(photos)} images in" in caplog.text and "busy" in caplog.text and "1 loader workers" in caplog.text
    assert LoopTime(images=10, forward_s=3.0, wall_s=4.0).busy == 0.75
    assert "busy 75.0% of the loop" in LoopTime(10, 3.0, 4.0).summary("x")


@pytest.mark.parametrize("workers", [0, 2])
def test_image_gone_after_the_manifest_is_named_with_what_to_do(photos, small_lite, tmp_path, workers):
    paths = [str(tmp_path / f"{i}.png") for i in range(12)]
    for source, path in zip(photos, paths):
        Image.open(source).save(path)
    (tmp_path / "9.png").unlink()
    with pytest.raises(MissingImageError) as caught:
        extract_shard(small_lite, paths, ["_blocks.4"], CPU, batch_size=4, progress=False, workers=workers)
    message = str(caught.value)
    assert message.startswith(f"image {tmp_path / '9.png'} is in the manifest but no longer on disk")
    assert "--forcerun data" in message
    assert "DataLoader" not in message and "Traceback" not in message  # the worker's wrapping is not in the way


def test_image_corrupted_after_the_manifest_is_named(photos, small_lite, tmp_path):
    paths = [str(tmp_path / f"{i}.png") for i in range(5)]
    for source, path in zip(photos, paths):
        Image.open(source).save(path)
    (tmp_path / "3.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CorruptImageError, match=f"cannot read image {tmp_path / '3.png'}"):
        list(iter_batches(paths, small_lite.preprocess, 2, workers=2))


def test_check_image_hashes_and_measures_from_one_read(photos, tmp_path):
    for path in photos[-3:]:
        record, sha1 = check_image(path)
        assert sha1 == hashlib.sha1(open(path, "rb").read()).hexdigest()
        assert record == image_quality(path)  # the bytes route and the path route agree
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    messages = []
    for read in (lambda p: image_quality(p), check_image):
        with pytest.raises(CorruptImageError) as caught:
            read(str(junk))
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == f"cannot read image {junk}: cannot identify image file {str(junk)!r}"


def test_check_images_opens_and_decodes_each_file_once(photos, monkeypatch):
    opened, decoded = [], []
    real_open, real_image_open = open, Image.open
    monkeypatch.setattr(data, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k),
                        raising=False)
    monkeypatch.setattr(data.Image, "open", lambda fp, *a, **k: decoded.append(fp) or real_image_open(fp, *a, **k))
    rows = pd.DataFrame({"path": photos[:6], "label": "x", "split": "all"})
    manifest, _, quality = check_images(rows)
    assert opened == photos[:6] and len(decoded) == 6
    assert len(manifest) == len(quality) == 6


def test_check_images_in_worker_processes_gives_the_same_tables(photos, tmp_path, monkeypatch):
    """Checked in 2 processes, in chunks smaller than the set: the same manifest, skipped list and
    quality table, in order; a corrupt file is skipped in its place, or raised naming it."""
    paths = []
    for i, source in enumerate(photos * 3):
        paths.append(str(tmp_path / f"{i:03d}.png"))
        Image.open(source).convert("RGB").reduce(4).save(paths[-1])
    (tmp_path / "017.png").write_bytes(b"\x89PNG broken")
    rows = pd.DataFrame({"path": paths, "label": "x", "split": "all"})
    one = check_images(rows, on_error="skip")
    monkeypatch.setattr(data, "CHECK_CHUNK", 5)  # many chunks: their order is what is tested
    two = check_images(rows, on_error="skip", workers=2)
    for a, b in zip(one, two):
        pd.testing.assert_frame_equal(a, b)
    assert one[1]["path"].tolist() == [str(tmp_path / "017.png")]
    with pytest.raises(CorruptImageError, match=f"cannot read image {tmp_path / '017.png'}"):
        check_images(rows, workers=2)


def test_empty_and_all_skipped_datasets_are_clear_errors(tmp_path):
    with pytest.raises(ManifestError, match="dataset mine has no images: its list of images is empty"):
        check_images(pd.DataFrame(columns=["path", "label", "split"]), dataset="dataset mine")
    (tmp_path / "a").mkdir()
    for name in ("x.png", "y.jpg"):
        (tmp_path / "a" / name).write_bytes(b"junk")
    rows = folder_rows(tmp_path)
    with pytest.raises(ManifestError, match=r"dataset mine has no images left: all 2 were unreadable and skipped "
                                            r"\(on_error: skip\), e.g. cannot read image .*x.png"):
        check_images(rows, on_error="skip", dataset="dataset mine")


def test_empty_folder_names_where_it_looked(tmp_path):
    (tmp_path / "cats").mkdir()
    (tmp_path / "loose.jpg").write_bytes(b"")
    with pytest.raises(ManifestError) as caught:
        folder_rows(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"no images in class sub-folders of {tmp_path} (looked for files ending")
    assert ".jpg" in message and ".png" in message and f"{tmp_path}/<class>/" in message
    assert "its 1 image file(s) directly in" in message


def test_empty_datasets_caught_at_start(tmp_path):
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    with pytest.raises(ConfigError, match="datasets.mine: dataset mine has no images in class sub-folders of .*empty"):
        check_datasets({"mine": {"source": "folder", "path": str(tmp_path / "empty")}})
    (tmp_path / "list.csv").write_text("path,label\n\n")
    with pytest.raises(ConfigError, match="dataset table has no images: CSV file .*list.csv' has no rows"):
        check_datasets({"table": {"source": "csv", "path": str(tmp_path / "list.csv")}})
    (tmp_path / "list.csv").write_text("path,label\nx.png,a\n")
    check_datasets({"table": {"source": "csv", "path": str(tmp_path / "list.csv")}})  # one row: fine at start
