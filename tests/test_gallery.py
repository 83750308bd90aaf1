"""The gallery's pages from a unit tree on disk: one page per unit, the missing says so,
tiles carry what they are sorted by, and a rebuild is byte-identical."""

from __future__ import annotations

import re

import numpy as np
import pytest

from featvis.core.io import save_npy, sha256_file
from featvis.core.units import unit_channels, unit_files, units_dir, write_unit_image
from featvis.gallery.charts import histogram, trace
from featvis.gallery.layer import build_layer
from featvis.gallery.site import build_index, build_model, write_assets


@pytest.fixture
def results(tmp_path):
    """A layer of 5 channels analysed on 'photos': patches for channels 0-3, a render of channel 1."""
    root = tmp_path / "results"
    rng = np.random.default_rng(0)
    maxima = rng.random((12, 5)).astype(np.float32)
    save_npy(root / "features/m/photos/conv/max.npy", maxima)
    patches = units_dir(root, "m", "conv", "patches_max", "photos")
    for c in range(4):
        caption = {"title": "3 maximally activating images", "values": [3.0, 2.0, 1.0], "labels": ["a", "b", "c"]}
        write_unit_image(patches, c, "patches", rng.integers(0, 255, (24, 72, 3), dtype=np.uint8), caption, "jpg")
    render = units_dir(root, "m", "conv", "render", "job")
    write_unit_image(render, 1, "copy0", rng.random((16, 16, 3)),
                     {"objective": [0.1, 0.5, 0.9], "final_max_activation": 1.5, "relative_to_dataset_max": 1.7})
    return root, maxima


def test_unit_tree_lookup(results):
    root, _ = results
    assert unit_channels(root, "m", "conv") == [0, 1, 2, 3]
    found = unit_files(root, "m", "conv", 1)
    assert [(f.stage, f.source, f.kind) for f in found] == [("patches_max", "photos", "patches"),
                                                           ("render", "job", "copy0")]
    assert found[1].caption["relative_to_dataset_max"] == 1.7


def test_layer_pages(results, tmp_path):
    root, maxima = results
    out = tmp_path / "gallery/m/conv"
    assert build_layer(out, root, "m", "conv", {"photos": str(root / "features/m/photos/conv/max.npy")}, []) == 5
    assert sorted(p.name for p in out.glob("*.html")) == ["0.html", "1.html", "2.html", "3.html", "4.html",
                                                          "index.html"]
    index = (out / "index.html").read_text()
    tiles = re.findall(r'data-channel="(\d+)" data-max="([^"]+)" data-ratio="([^"]+)"', index)
    assert [int(c) for c, _, _ in tiles] == list(range(5))
    np.testing.assert_allclose([float(m) for _, m, _ in tiles], maxima.max(axis=0), rtol=1e-5)
    assert [r for _, _, r in tiles] == ["n/a", "1.7", "n/a", "n/a", "n/a"]
    # the render is channel 1's thumbnail; channel 4 has no picture at all, and says so
    assert (out / "thumbs/0001.jpg").exists() and not (out / "thumbs/0004.jpg").exists()
    assert (out / "thumbs/0000.jpg").exists()  # no render: the tile shows the unit's best patch
    unit4 = (out / "4.html").read_text()
    assert "No top patches for this unit" in unit4 and "Not rendered" in unit4
    assert 'rel="next"' not in unit4 and 'href="3.html" rel="prev"' in unit4
    unit1 = (out / "1.html").read_text()
    assert "img/render.job.0001.copy0.png" in unit1 and "1.7" in unit1 and "<polyline" in unit1
    assert "img/patches_max.photos.0001.patches.jpg" in unit1 and (out / "img/render.job.0001.copy0.png").exists()
    # a rebuild writes the same bytes
    before = {p: sha256_file(p) for p in out.rglob("*") if p.is_file()}
    build_layer(out, root, "m", "conv", {"photos": str(root / "features/m/photos/conv/max.npy")}, [])
    assert before == {p: sha256_file(p) for p in out.rglob("*") if p.is_file()}


def test_every_local_link_resolves(results, tmp_path):
    root, _ = results
    gallery = tmp_path / "gallery"
    build_layer(gallery / "m/conv", root, "m", "conv", {"photos": str(root / "features/m/photos/conv/max.npy")}, [])
    table = tmp_path / "layers.tsv"
    table.write_text("layer\ttype\tshape\nconv\tConv2d\t(1, 5, 4, 4)\n")
    build_model(gallery / "m", "m", {"architecture": "x"}, ["conv"], str(table), [])
    build_index(gallery, {"m": ["conv"]}, {"photos": {"images": 12, "source": "bundled"}})
    write_assets(gallery / "assets")
    for page in gallery.rglob("*.html"):
        for link in re.findall(r'(?:href|src)="([^"#]+)"', page.read_text()):
            assert (page.parent / link).exists(), f"{page.relative_to(gallery)} -> {link}"


def test_histogram_counts_and_marker():
    values = np.array([0.0, 0.0, 0.0, 1.0])
    svg = histogram(values, bins=2, marker=2.0, marker_label="render")
    heights = [float(h) for h in re.findall(r'<rect[^>]* height="([\d.]+)"', svg)]
    assert len(heights) == 2 and heights[0] == pytest.approx(3 * heights[1])  # 3 images vs 1
    assert 'class="marker"' in svg and "render" in svg
    assert trace([]) == "" and trace([1, 2, 3]).count(",") == 3


def test_a_rendered_only_layer_has_pages_for_its_rendered_units(tmp_path):
    root = tmp_path / "results"
    render = units_dir(root, "m", "mixed4a", "render", "job")
    for c in (97, 476):
        write_unit_image(render, c, "copy0", np.full((8, 8, 3), 0.5), {"objective": [1.0]})
    out = tmp_path / "gallery/m/mixed4a"
    assert build_layer(out, root, "m", "mixed4a", {}, []) == 2
    assert sorted(p.name for p in out.glob("*.html")) == ["476.html", "97.html", "index.html"]
    page = (out / "97.html").read_text()
    assert 'href="476.html" rel="next"' in page and 'rel="prev"' not in page
    assert "This layer was not analysed on a dataset" in page


def test_pictures_left_by_another_config_stay_out(results, tmp_path):
    root, _ = results
    out = tmp_path / "gallery/m/conv"
    patches = str(units_dir(root, "m", "conv", "patches_max", "photos"))
    build_layer(out, root, "m", "conv", {"photos": str(root / "features/m/photos/conv/max.npy")}, [],
                producers=[patches])  # this run made no render: the render folder is an old run's
    unit1 = (out / "1.html").read_text()
    assert "Not rendered" in unit1 and "img/render.job." not in unit1
    assert not (out / "img/render.job.0001.copy0.png").exists()
