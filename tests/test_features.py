"""Layer statistics against NumPy, and shards that merge to the unsharded result."""

from __future__ import annotations

import numpy as np
import torch

from featvis.vision.data import build_mnist5k
from featvis.vision.features import extract_shard, layer_stats, load_layer, merge_shards, shard_slices, write_shard
from featvis.vision.models import MNIST_PREPROCESS, LoadedModel, MnistCNN


def test_layer_stats_match_numpy():
    activation = torch.randn(3, 4, 5, 6)
    stats = layer_stats(activation)
    a = activation.numpy().reshape(3, 4, 30)
    np.testing.assert_allclose(stats.mean, a.mean(axis=2), rtol=1e-6)
    np.testing.assert_array_equal(stats.max, a.max(axis=2))
    flat = a.argmax(axis=2)
    np.testing.assert_array_equal(stats.argmax[..., 0], flat // 6)
    np.testing.assert_array_equal(stats.argmax[..., 1], flat % 6)
    assert stats.spatial == (5, 6)


def test_linear_layer_stats_have_no_positions():
    stats = layer_stats(torch.randn(2, 3))
    np.testing.assert_array_equal(stats.mean, stats.max)
    assert (stats.argmax == 0).all() and stats.spatial == (1, 1)


def test_shard_slices_cover_everything_once():
    assert shard_slices(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert shard_slices(2, 5) == [(0, 1), (1, 2)]


def test_sharded_extraction_merges_to_the_unsharded_result(tmp_path):
    rows = build_mnist5k(tmp_path / "mnist").iloc[:50]
    model = LoadedModel("cnn", MnistCNN().eval(), MNIST_PREPROCESS)
    paths = rows["path"].tolist()
    layers = ["conv2", "fc"]
    whole = extract_shard(model, paths, layers, torch.device("cpu"), batch_size=16, progress=False)
    shard_dirs = []
    for i, (start, stop) in enumerate(shard_slices(len(paths), 3)):
        shard = extract_shard(model, paths[start:stop], layers, torch.device("cpu"), batch_size=7, progress=False)
        write_shard(shard, tmp_path / f"shard{i}")
        shard_dirs.append(tmp_path / f"shard{i}")
    for layer in layers:
        merge_shards([d / f"{layer}.npz" for d in shard_dirs], tmp_path / "merged" / layer, layer=layer)
        merged = load_layer(tmp_path / "merged" / layer)
        for stat in ("mean", "max", "argmax"):
            np.testing.assert_allclose(merged[stat], whole[layer][stat], rtol=1e-5, atol=1e-6)
        assert isinstance(merged["mean"], np.memmap)
