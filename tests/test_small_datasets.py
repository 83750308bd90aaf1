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


def test_16_bit_png_keeps_its_range_instead_of_clipping_to_white(tmp_path):
    """A 16-bit greyscale PNG (microscopy, scans) is shown over its full range, value / 257, as
    viewers show it; Pillow's plain convert would clip every value above 255 to white."""
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = np.asarray(open_image(tmp_path / "deep.png"))
    np.testing.assert_array_equal(out[..., 0], np.rint(ramp / 257).astype(np.uint8))
    np.testing.assert_array_equal(out[..., 1], out[..., 0])
    quality = check_images(rows_for([tmp_path / "deep.png"]), "raise")[2]
    assert quality.loc[0, "warning"] == "" and quality.loc[0, "std"] > 50
    assert quality.loc[0, "mode"].startswith("I")  # the mode as stored in the file


@pytest.mark.parametrize("values, expected", [
    ([0.0, 100.0, 255.0], [0, 100, 255]),                    # already 0-255: as it is
    ([-1.0, 0.0, 1.0], [0, 128, 255]),                      # signed: stretched min to max
    ([1000.0, 1000.0, 1000.0], [4, 4, 4]),                 # within 16 bits: / 257
    ([-7.0, -7.0, -7.0], [0, 0, 0]),                       # constant out of range: no division by 0
])
def test_float_tiff_is_scaled_to_8_bit(tmp_path, values, expected):
    Image.fromarray(np.array([values], np.float32), mode="F").save(tmp_path / "f.tif")
    out = np.asarray(open_image(tmp_path / "f.tif", channels=1))
    np.testing.assert_array_equal(out[0], expected)


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


# --- embeddings from 2 images up --------------------------------------------------------


def few_features(n: int, dims: int = 64) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.normal(size=(n, dims)) + rng.integers(0, 2, (n, 1)) * 3.0


@pytest.mark.parametrize("n", [2, 3, 5, 30])
@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_every_method_maps_a_handful_of_images(method, n, caplog):
    from featvis.vision.embed import embed, fit_embedding

    x = few_features(n, dims=1280)  # wider than t-SNE's 50-dim PCA, like a real layer
    with caplog.at_level(logging.INFO):
        coords, used = fit_embedding(x, method, seed=0, threads=1, perplexity=30, n_neighbors=15)
    assert coords.shape == (n, 2) and np.isfinite(coords).all()
    assert np.ptp(coords, axis=0).max() > 0  # the images are not all put on one spot
    np.testing.assert_array_equal(coords, embed(x, method, seed=0, threads=1, perplexity=30, n_neighbors=15))
    if method == "tsne" and n >= 3:
        assert used["perplexity"] == pytest.approx((n - 1) / 3) and used["pca_dims"] == n
        assert f"perplexity 30 capped to {(n - 1) / 3:.4g} for {n} images" in caplog.text
    if method == "umap" and n >= 3:
        assert used["n_neighbors"] == min(15, n - 1)
    if method != "pca" and n == 2:
        assert "pca" in used["layout"] and "at least 3 images" in caplog.text


def test_two_images_lie_on_one_axis():
    from featvis.vision.embed import embed

    coords = embed(few_features(2), "pca")
    assert (coords[:, 1] == 0).all() and coords[0, 0] == pytest.approx(-coords[1, 0]) and coords[0, 0] != 0


def test_identical_features_give_one_point_not_a_crash():
    from featvis.vision.embed import fit_embedding

    coords, used = fit_embedding(np.ones((5, 8)), "tsne")  # openTSNE itself segfaults on this
    assert (coords == 0).all() and "identical" in used["layout"]


def test_trustworthiness_on_tiny_sets():
    from featvis.vision.embed import embed, trust_neighbors, trustworthiness

    assert trustworthiness(few_features(2), embed(few_features(2), "pca"), 10) is None
    for n in (3, 4, 5, 30):
        x = few_features(n)
        value = trustworthiness(x, embed(x, "pca"), 10)
        assert 0.0 <= value <= 1.0
        assert 1 <= trust_neighbors(n, 10) < n / 2
    x = few_features(6)
    assert trustworthiness(x, x[:, :2], 2) == trustworthiness(x, x[:, :2], 100)  # k capped to 2 for 6 images


# --- neighbours and patches on tiny sets ------------------------------------------------


def test_neighbours_and_queries_capped_with_a_note(caplog):
    from featvis.vision.neighbors import nearest, neighbor_count, resolve_queries

    manifest = pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "label": ["x", "y", "x"]})
    with caplog.at_level(logging.INFO):
        queries = resolve_queries(manifest, [], 6)
        k = neighbor_count(8, 3)
    assert queries == [0, 1, 2] and k == 2
    assert "n_queries 6 capped to 3" in caplog.text and "k 8 capped to 2 for 3 images" in caplog.text
    indices, dists = nearest(np.array([[0.0], [1.0], [3.0]]), queries, 8)
    assert indices.tolist() == [[1, 2], [0, 2], [1, 0]] and np.isfinite(dists).all()


def test_patch_topk_capped_at_the_dataset(caplog):
    from featvis.vision.mining import topk_from_stats

    values = np.array([[1.0, 5.0], [3.0, 2.0]], np.float32)  # 2 images x 2 channels
    argmax = np.zeros((2, 2, 2), np.int64)
    with caplog.at_level(logging.INFO):
        topk = topk_from_stats(values, argmax, 9)
    assert topk["image"].tolist() == [[1, 0], [0, 1]]
    assert "patches k 9 capped to 2 for 2 images" in caplog.text


# --- figures ---------------------------------------------------------------------------


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("k", [1, 2, 9])
def test_patch_grid_row_labels_do_not_overlap(k):
    from featvis.vision.patches import layer_grid

    channels = [0, 1, 2, 15, 1023]
    patches = [[np.full((19, 19, 3), 60 * j % 255, np.uint8) for j in range(k)] for _ in channels]
    title = "efficientnet_lite0 _blocks.4: top-2 maximally activating images, channels 0-15 of 40\nfield 19x19 px"
    fig = layer_grid(patches, channels, title)
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    labels = [t for t in fig.texts if t.get_text().startswith("ch ")]
    assert [t.get_text() for t in labels] == [f"ch {c}" for c in channels]
    assert title in [t.get_text() for t in fig.texts]  # the suptitle is one of the figure's texts
    texts = [t.get_window_extent(renderer) for t in fig.texts]
    cells = [ax.get_window_extent(renderer) for ax in fig.axes]
    for i, box in enumerate(texts):
        assert box.x0 >= figure_box.x0 and box.x1 <= figure_box.x1  # nothing cut off, the title included
        assert not any(overlaps(box, other) for other in texts[i + 1 :])
        assert not any(overlaps(box, cell) for cell in cells)
    rows = sorted({round(c.y0, 3) for c in cells}, reverse=True)  # each label beside its own row
    for label, y0 in zip(texts, rows):
        assert y0 < (label.y0 + label.y1) / 2 < y0 + cells[0].height


def test_atlas_grid_grows_with_n():
    from featvis.vision.embed import ATLAS_MAX_GRID, atlas_layout

    sides = [atlas_layout(n)[0] for n in (2, 3, 5, 30, 49, 200, 2000, 100_000)]
    assert sides[0] == 2 and sides == sorted(sides) and sides[-1] == ATLAS_MAX_GRID
    assert atlas_layout(30) == (6, 32 * 24 // 6) and atlas_layout(49)[0] == 7
    cells = [atlas_layout(n)[1] for n in (2, 30, 2000)]
    assert cells == sorted(cells, reverse=True) and cells[-1] == 32  # fewer images: bigger thumbnails
    assert atlas_layout(30, 10, 40) == (10, 40)  # an explicit grid is kept


def test_scatter_points_scale_with_n():
    from featvis.vision.embed import point_style, scatter

    areas = [point_style(n)[0] for n in (2, 30, 2000, 100_000)]
    assert areas == sorted(areas, reverse=True) and areas[0] >= 50 and areas[-1] >= 1
    fig = scatter(np.array([[0.0, 0.0], [1.0, 1.0]]), ["a", "b"], "two")
    assert fig.axes[0].collections[0].get_sizes()[0] == areas[0]


def test_atlas_of_two_images_has_no_empty_row():
    from featvis.vision.embed import atlas, atlas_layout, embed

    coords = embed(few_features(2), "pca")  # both on the x axis: one row of the 2 x 2 grid
    grid, cell_px = atlas_layout(2)
    fig = atlas(coords, lambda i: np.full((8, 8, 3), 100 * i, np.uint8), grid, cell_px, "two")
    canvas = fig.axes[0].get_images()[0].get_array()
    assert canvas.shape[:2] == (cell_px, 2 * cell_px)
    centres = {int(canvas[cell_px // 2, cell_px // 2, 0]), int(canvas[cell_px // 2, cell_px * 3 // 2, 0])}
    assert centres == {0, 100}  # both thumbnails, one per cell (PCA's sign decides which side)
