"""Where a field is shown, a local field says it is local and why: the fields cache, patch
captions, the layer table and the gallery's layer and unit pages."""

from __future__ import annotations

import numpy as np
import pytest

from featvis.core.io import save_npz
from featvis.core.units import units_dir, write_unit_image
from featvis.gallery.layer import build_layer
from featvis.vision.layers import layer_table
from featvis.vision.models import load_model
from featvis.vision.patches import describe_field
from featvis.vision.receptive import ReceptiveFields, load_fields, save_fields

SE = "squeeze-excitation gate in features.1.block.1"


@pytest.fixture(scope="module")
def mobilenet():
    """torchvision MobileNetV3-Small: a squeeze-excitation block in its first bottleneck."""
    model = load_model({"architecture": "mobilenet_v3_small", "weights": "random", "image_size": 64})
    return model.module, model.preprocess.input_shape()


def test_layer_table_gives_kind_and_reason(mobilenet):
    module, shape = mobilenet
    rows = layer_table(module, shape).set_index("layer")
    assert rows.loc["features.0", ["rf_size", "rf_kind", "rf_note"]].tolist() == ["3x3", "exact", ""]
    assert rows.loc["features.2", ["rf_size", "rf_kind"]].tolist() == ["15x15", "local"]
    assert rows.loc["features.2", "rf_note"] == f"{SE} treated as a per-channel scale"
    assert rows.loc["features.1.block.1.avgpool", ["rf_size", "rf_kind", "rf_note"]].tolist() == [
        "global", "global", "adaptive_avg_pool2d in features.1.block.1.avgpool pools the whole map"]


def test_fields_cache_keeps_kind_and_reason_and_reads_old_files(mobilenet, tmp_path):
    module, shape = mobilenet
    traced = ReceptiveFields(module, shape, ["features.0", "features.2"])
    save_fields(tmp_path / "fields.npz", shape, {layer: traced.layer_field(layer) for layer in traced.layer_node})
    fields = load_fields(tmp_path / "fields.npz")[1]
    assert (fields["features.0"].kind, fields["features.0"].reason) == ("exact", "")
    assert (fields["features.2"].kind, fields["features.2"].reason) == ("local", traced.reason("features.2"))
    with np.load(tmp_path / "fields.npz") as data:  # a file from before kinds and reasons were saved
        old = {key: data[key] for key in data.files if not key.endswith((":kind", ":reason"))}
    save_npz(tmp_path / "old.npz", **old)
    field = load_fields(tmp_path / "old.npz")[1]["features.2"]
    assert (field.kind, field.reason) == ("exact", "")
    np.testing.assert_array_equal(field.boxes, fields["features.2"].boxes)


def test_captions_and_gallery_pages_say_local_and_why(mobilenet, tmp_path):
    module, shape = mobilenet
    field = ReceptiveFields(module, shape, ["features.2"]).layer_field("features.2")
    words = describe_field(field)
    assert words == (f"local receptive field 15x15 px, stride 8 ({SE} treated as a per-channel scale; "
                     "the gates themselves see the whole image)")
    results = tmp_path / "results"
    caption = {"title": "2 maximally activating images", "field": words, "values": [2.0, 1.0], "labels": ["a", "b"]}
    write_unit_image(units_dir(results, "m", "features.2", "patches_max", "photos"), 0, "patches",
                     np.zeros((24, 48, 3), dtype=np.uint8), caption, "jpg")
    out = tmp_path / "gallery"
    build_layer(out, results, "m", "features.2", {}, [])
    for page in ("index.html", "0.html"):
        html = (out / page).read_text()
        assert "local receptive field 15x15 px" in html and f"{SE} treated as a per-channel scale" in html, page
