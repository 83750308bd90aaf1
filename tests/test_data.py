"""Manifests from folders, CSV files and bundled sets; corrupt images never pass silently."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from featvis.core.io import sha256_file
from featvis.vision.data import (
    CorruptImageError,
    ManifestError,
    build_photos,
    csv_rows,
    display_image,
    folder_rows,
    manifest_hash,
    read_manifest,
    validate,
    write_manifest,
)


def test_folder_manifest_has_one_label_per_subfolder(image_folder):
    rows = folder_rows(image_folder)
    assert list(rows["label"]) == ["blue"] * 3 + ["red"] * 3
    manifest, skipped = validate(rows)
    assert len(manifest) == 6 and skipped.empty and manifest["sha1"].str.len().eq(40).all()


def test_csv_manifest_resolves_relative_paths(image_folder, tmp_path):
    csv = image_folder / "list.csv"
    csv.write_text("path,label\nred/0.png,r\nblue/1.png,b\n")
    rows = csv_rows(csv)
    assert rows["path"].tolist() == [str(image_folder / "red/0.png"), str(image_folder / "blue/1.png")]
    assert (rows["split"] == "all").all()
    (tmp_path / "bad.csv").write_text("file,label\nx.png,a\n")
    with pytest.raises(ManifestError, match="missing column.*path"):
        csv_rows(tmp_path / "bad.csv")


def test_corrupt_image_raises_naming_the_file(image_folder):
    broken = image_folder / "red" / "9.png"
    broken.write_bytes((image_folder / "red" / "0.png").read_bytes()[:40])
    with pytest.raises(CorruptImageError, match="9.png"):
        validate(folder_rows(image_folder))


def test_corrupt_image_skipped_with_warning_when_asked(image_folder, caplog):
    broken = image_folder / "blue" / "junk.jpg"
    broken.write_bytes(b"not an image at all")
    with caplog.at_level(logging.WARNING):
        manifest, skipped = validate(folder_rows(image_folder), on_error="skip")
    assert str(broken) not in manifest["path"].tolist() and len(manifest) == 6
    assert skipped["path"].tolist() == [str(broken)] and "junk.jpg" in caplog.text


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match="no images"):
        folder_rows(tmp_path)


def test_manifest_round_trip_and_hash(image_folder, tmp_path):
    manifest, _ = validate(folder_rows(image_folder))
    write_manifest(manifest, tmp_path / "m.csv")
    again = read_manifest(tmp_path / "m.csv")
    pd.testing.assert_frame_equal(again, manifest)
    changed = manifest.copy()
    changed.loc[0, "label"] = "other"
    assert manifest_hash(again) == manifest_hash(manifest) != manifest_hash(changed)


def test_photos_are_deterministic_multiscale_crops(tmp_path):
    first = build_photos(tmp_path / "a", n_crops=40, crop_px=32, seed=3)
    second = build_photos(tmp_path / "b", n_crops=40, crop_px=32, seed=3)
    assert first["label"].nunique() == 18
    assert [sha256_file(p) for p in first["path"]] == [sha256_file(p) for p in second["path"]]
    assert display_image(first["path"][0], 32).shape == (32, 32, 3)


def test_display_image_resizes_and_centre_crops(tmp_path):
    from PIL import Image

    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, 10:30] = 255  # a white centre band, exactly the centre square
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    out = display_image(tmp_path / "wide.png", 10)
    assert out.shape == (10, 10, 3) and out[:, 1:-1].min() > 200
