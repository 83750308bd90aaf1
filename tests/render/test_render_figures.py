import json

import numpy as np
import pytest
from PIL import Image

from featvis.core.figures import save_figure
from featvis.render import RenderSettings
from featvis.render import figures as rfig
from featvis.render.export import load_channel_maxima, save_batch
from featvis.render.recipes import (
    REGULARIZATION_REGIMES,
    render_addition,
    render_channels,
    render_interpolation,
    render_regularization_comparison,
)

FAST = RenderSettings(size=32, steps=3, mean=(0, 0, 0), std=(1, 1, 1), snapshots=(1, 3))


def test_layer_job_writes_pngs_params_and_trace(grating_net, tmp_path):
    batch = render_channels(grating_net, "relu", [0, 1], FAST, seed=5, copies=2, diversity=1.0)
    assert batch.names == ["channel0000_copy0", "channel0000_copy1", "channel0001_copy0", "channel0001_copy1"]
    maxima = tmp_path / "max.json"
    maxima.write_text(json.dumps({"max": [2.0, 4.0]}))
    paths = save_batch(batch, tmp_path / "out", layer="relu", dataset_max=load_channel_maxima(maxima))
    png = np.asarray(Image.open(paths[0]))
    assert png.shape == (32, 32, 3) and png.dtype == np.uint8
    np.testing.assert_array_equal(png, np.rint(batch.result.images[0] * 255).astype(np.uint8))
    trace = json.loads((tmp_path / "out" / "trace.json").read_text())
    item = trace["items"][2]
    assert item["channel"] == 1 and len(item["objective"]) == 3
    assert item["relative_to_dataset_max"] == pytest.approx(item["final_max_activation"] / 4.0)
    params = np.load(tmp_path / "out" / "params.npz")
    assert params["param_spectrum"].shape[0] == 4


def test_item_seeds_follow_content_not_position(grating_net):
    one = render_channels(grating_net, "relu", [1], FAST, seed=5)
    two = render_channels(grating_net, "relu", [0, 1], FAST, seed=5)
    assert one.result.seeds[0] == two.result.seeds[1]


def test_addition_and_interpolation_batches(grating_net):
    add = render_addition(grating_net, "relu", [(0, 1)], FAST)
    assert add.names == ["channel0000", "channel0000_plus_0001", "channel0001"]
    assert add.result.images.shape == (3, 32, 32, 3)
    strip = render_interpolation(grating_net, "relu", 0, 1, 4, FAST)
    assert strip.result.images.shape[0] == 4
    assert "param_shared_0" in {f"param_{k.replace('.', '_')}" for k in strip.result.params}


def test_regularization_comparison_uses_the_same_steps(grating_net):
    regimes = render_regularization_comparison(grating_net, "relu", [0], FAST)
    assert list(regimes) == list(REGULARIZATION_REGIMES)
    assert {b.result.trace.shape for b in regimes.values()} == {(3, 1)}


def test_figures_are_byte_reproducible(grating_net, tmp_path):
    batch = render_channels(grating_net, "relu", [0, 1], FAST)
    triple = np.concatenate([batch.result.images] * 2)[:3]
    figures = {
        "grid": lambda: rfig.channel_grid(batch.result.images, [0, 1], "grid"),
        "diversity": lambda: rfig.diversity_rows(batch.result.images, [0], 2, "div"),
        "addition": lambda: rfig.addition_figure(triple, [(0, 1)], "add"),
        "strip": lambda: rfig.interpolation_strip(batch.result.images, 0, 1, "strip"),
        "reg": lambda: rfig.regularization_figure({"a": batch.result.images, "b": batch.result.images},
                                                  [0, 1], "reg"),
        "progress": lambda: rfig.progress_figure(batch.result.snapshots, ["a", "b"], "progress"),
    }
    for name, make in figures.items():
        save_figure(make(), tmp_path / f"{name}1.png")
        save_figure(make(), tmp_path / f"{name}2.png")
        assert (tmp_path / f"{name}1.png").read_bytes() == (tmp_path / f"{name}2.png").read_bytes()


def test_channel_maxima_from_per_image_features(tmp_path):
    per_image = np.array([[1.0, 5.0], [3.0, 2.0], [2.0, 4.0]], dtype=np.float32)  # (N, C) as the features stage
    np.save(tmp_path / "max.npy", per_image)
    np.testing.assert_array_equal(load_channel_maxima(tmp_path / "max.npy"), [3.0, 5.0])
    np.save(tmp_path / "c.npy", np.array([7.0, 8.0]))
    np.testing.assert_array_equal(load_channel_maxima(tmp_path / "c.npy"), [7.0, 8.0])
