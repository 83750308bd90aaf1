"""Cached receptive fields (rule layer_table's fields.npz) give exactly the live trace's boxes."""

from __future__ import annotations

import pytest

from featvis.core.hooks import execution_order, layer_names
from featvis.vision.layers import layer_table
from featvis.vision.receptive import ReceptiveFields, load_fields, save_fields

LITE0_LAYERS = ["_conv_stem", "_blocks.0", "_blocks.1", "_blocks.4", "_blocks.10", "_conv_head", "_fc"]


def cache_round_trip(model, shape, layers, path):
    """Fields saved from one trace of every module, as rule layer_table makes them, and loaded."""
    traced = ReceptiveFields(model, shape, layer_names(model))
    save_fields(path, shape, {layer: traced.layer_field(layer) for layer in layers})
    return load_fields(path)


def assert_boxes_equal_walk(model, shape, layers, path):
    """Every position of every layer: the loaded box is the box of a live per-layer trace's
    backward walk (what the figure scripts computed before the cache)."""
    loaded_shape, fields = cache_round_trip(model, shape, layers, path)
    assert loaded_shape == shape and list(fields) == layers
    grids = execution_order(model, shape)
    for layer in layers:
        live = ReceptiveFields(model, shape, [layer])
        field = fields[layer]
        if live.field(layer) is None:
            assert field is None, layer
            continue
        assert field.nominal == live.field(layer)
        height, width = grids[layer][-2:]
        assert field.boxes.shape == (height, width, 4), layer
        for y in range(height):
            for x in range(width):
                assert field.box(y, x, *shape[-2:]) == live.box(layer, y, x), (layer, y, x)


def test_cached_lite0_fields_equal_the_live_trace(lite0, tmp_path):
    assert_boxes_equal_walk(lite0.module, (1, 3, 72, 72), LITE0_LAYERS, tmp_path / "fields.npz")


def test_cached_mnist_fields_equal_the_live_trace(mnist_model, tmp_path):
    layers = layer_names(mnist_model.module)
    assert_boxes_equal_walk(mnist_model.module, (1, 1, 28, 28), layers, tmp_path / "fields.npz")


def test_saved_fields_are_byte_identical_and_checked(mnist_model, tmp_path):
    shape, layers = (1, 1, 28, 28), ["conv2", "fc"]
    cache_round_trip(mnist_model.module, shape, layers, tmp_path / "a.npz")
    _, fields = cache_round_trip(mnist_model.module, shape, layers, tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert fields["fc"] is None
    with pytest.raises(ValueError, match="traced at"):
        fields["conv2"].box(0, 0, 32, 32)


def test_layer_table_from_a_shared_trace(mnist_model):
    module, shape = mnist_model.module, (1, 1, 28, 28)
    shared = layer_table(module, shape, ReceptiveFields(module, shape, layer_names(module)))
    assert shared.equals(layer_table(module, shape))
    with pytest.raises(ValueError, match="does not cover"):
        layer_table(module, shape, ReceptiveFields(module, shape, ["conv1"]))
