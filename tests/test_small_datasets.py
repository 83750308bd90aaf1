"""Small and odd datasets: transparency, greyscale and huge images, the quality table,
embeddings / neighbours / patches on a handful of images, and figures that stay legible."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from featvis.vision.data import (
    NEAR_CONSTANT_STD,
    TRANSPARENT_BACKGROUND,
    CorruptImageError,
    check_images,
    display_image,
    open_image,
)

GREY = TRANSPARENT_BACKGROUND


def disc_alpha(size: int = 64) -> np.ndarray:
    """An alpha channel holding the whole design: an opaque disc, transparent around it."""
    yy, xx = np.mgrid[:size, :size]
    return np.where((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2, 255, 0).astype(np.uint8)


def rows_for(paths) -> pd.DataFrame:
    return pd.DataFrame({"path": [str(p) for p in paths], "label": "x", "split": "all"})


# --- transparency -----------------------------------------------------------------------


@pytest.mark.parametrize("ink", [0, 255])  # a black design and a white one: both must stay visible
def test_rgba_design_only_in_alpha_is_visible(tmp_path, ink):
    alpha = disc_alpha()
    pixels = np.dstack([np.full_like(alpha, ink)] * 3 + [alpha])
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "logo.png")
    out = np.asarray(open_image(tmp_path / "logo.png"))
    assert out.shape == (64, 64, 3)
    assert (out[0, 0] == GREY).all()  # fully transparent corner: exactly the background
    assert (out[32, 32] == ink).all()  # opaque centre: the design's own colour
    assert out.std() > 10 * NEAR_CONSTANT_STD


def test_half_transparent_pixels_blend_with_grey(tmp_path):
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[..., 3] = 128  # black at half opacity
    Image.fromarray(pixels, mode="RGBA").save(tmp_path / "half.png")
    assert np.abs(np.asarray(open_image(tmp_path / "half.png")).astype(int) - 64).max() <= 1


def test_la_image_composites_in_colour_and_grey(tmp_path):
    alpha = disc_alpha()
    Image.fromarray(np.dstack([np.full_like(alpha, 255), alpha]), mode="LA").save(tmp_path / "la.png")
    rgb = np.asarray(open_image(tmp_path / "la.png"))
    grey = np.asarray(open_image(tmp_path / "la.png", channels=1))
    assert (rgb[0, 0] == GREY).all() and (rgb[32, 32] == 255).all()
    assert grey.shape == (64, 64) and grey[0, 0] == GREY[0] and grey[32, 32] == 255


def test_palette_image_with_transparent_index(tmp_path):
    index = (disc_alpha() > 0).astype(np.uint8)  # 0 outside the disc, 1 inside
    image = Image.fromarray(index, mode="P")
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # 0: red (transparent), 1: blue
    image.save(tmp_path / "p.png", transparency=0)
    out = np.asarray(open_image(tmp_path / "p.png"))
    assert (out[0, 0] == GREY).all()  # transparent red becomes grey, not red
    assert out[32, 32].tolist() == [0, 0, 255]


def test_greyscale_png_decodes_to_equal_channels(tmp_path):
    pixels = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1))
    Image.fromarray(pixels, mode="L").save(tmp_path / "grey.png")
    out = np.asarray(open_image(tmp_path / "grey.png"))
    assert out.shape == (16, 64, 3)
    np.testing.assert_array_equal(out[..., 0], pixels)
    np.testing.assert_array_equal(out[..., 2], pixels)


@pytest.fixture(scope="module")
def large_jpeg(tmp_path_factory):
    """A 5,000 x 3,000 px JPEG of deterministic smooth content (a wallpaper-sized photo)."""
    yy, xx = np.mgrid[:3000, :5000].astype(np.float32)
    pixels = np.stack([xx / 5000 * 255, yy / 3000 * 255, 127.5 + 127.5 * np.sin(xx / 200 + yy / 150)], axis=-1)
    path = tmp_path_factory.mktemp("large") / "wallpaper.jpg"
    Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
    return path


def test_large_jpeg_decodes_and_is_measured(large_jpeg):
    out = display_image(large_jpeg, 224)
    assert out.shape == (224, 224, 3) and out.std() > 20
    manifest, _, quality = check_images(rows_for([large_jpeg]))
    row = quality.iloc[0]
    assert (row["width"], row["height"], row["mode"]) == (5000, 3000, "RGB")
    assert row["std"] > 20 and row["warning"] == "" and not row["transparent"]
    assert len(manifest) == 1


# --- the quality table ------------------------------------------------------------------


def test_quality_table_flags_constant_not_natural(tmp_path, caplog):
    from skimage import data as sk

    Image.fromarray(sk.astronaut()).save(tmp_path / "astronaut.png")
    Image.new("RGB", (300, 200), (40, 90, 200)).save(tmp_path / "flat_blue.png")
    clear = np.zeros((40, 40, 4), np.uint8)  # fully transparent: the model sees only grey
    Image.fromarray(clear, mode="RGBA").save(tmp_path / "clear.png")
    opaque = np.dstack([sk.astronaut()[:40, :40], np.full((40, 40), 255, np.uint8)])
    Image.fromarray(opaque, mode="RGBA").save(tmp_path / "opaque.png")
    paths = [tmp_path / n for n in ("astronaut.png", "flat_blue.png", "clear.png", "opaque.png")]
    with caplog.at_level(logging.INFO):
        _, _, quality = check_images(rows_for(paths))
    table = quality.set_index(quality["path"].map(lambda p: p.rsplit("/", 1)[-1]))
    assert list(quality.columns) == ["path", "width", "height", "mode", "transparent", "std", "warning"]
    assert table.loc["astronaut.png", "warning"] == "" and table.loc["astronaut.png", "std"] > 30
    assert "near-constant" in table.loc["flat_blue.png", "warning"] and table.loc["flat_blue.png", "std"] == 0
    assert "near-constant" in table.loc["clear.png", "warning"] and bool(table.loc["clear.png", "transparent"])
    assert table.loc["opaque.png", "mode"] == "RGBA" and not table.loc["opaque.png", "transparent"]
    assert "flat_blue.png" in caplog.text and "clear.png" in caplog.text and "astronaut.png:" not in caplog.text
    assert "1 with transparency" in caplog.text and "2 near-constant" in caplog.text


def test_quality_keeps_corrupt_handling(tmp_path):
    Image.new("RGB", (20, 20), (1, 2, 3)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG broken")
    rows = rows_for([tmp_path / "ok.png", tmp_path / "bad.png"])
    with pytest.raises(CorruptImageError, match="bad.png"):
        check_images(rows)
    manifest, skipped, quality = check_images(rows, on_error="skip")
    assert quality["path"].tolist() == manifest["path"].tolist() == [str(tmp_path / "ok.png")]
    assert skipped["path"].tolist() == [str(tmp_path / "bad.png")]
