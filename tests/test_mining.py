"""Top-K mining equals a brute-force reference; shards merge exactly; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featvis.vision.data import iter_batches
from featvis.vision.mining import MiningError, merge_topk, mine_topk, spatial_extreme, topk_from_stats

CPU = torch.device("cpu")


def all_activations(model, paths, layer):
    """Every activation of ``layer`` for every image, the slow obvious way."""
    acts = []
    handle = dict(model.module.named_modules())[layer].register_forward_hook(lambda m, i, o: acts.append(o.numpy()))
    with torch.no_grad():
        for _, batch in iter_batches(paths, model.preprocess, 5):
            model.module(batch)
    handle.remove()
    return np.concatenate(acts).astype(np.float64)


def brute_force(acts, k, negative=False):
    """Per channel: each image's best position (first on ties), then images ranked by
    (-value, index)."""
    n, c = acts.shape[:2]
    flat = acts.reshape(n, c, -1) * (-1 if negative else 1)
    pos = flat.argmax(axis=2)
    best = np.take_along_axis(flat, pos[..., None], axis=2)[..., 0]
    width = acts.shape[3] if acts.ndim == 4 else 1
    out = {key: np.zeros((c, k), np.int64) for key in ("image", "y", "x")}
    value = np.zeros((c, k))
    for ch in range(c):
        order = np.lexsort((np.arange(n), -best[:, ch]))[:k]
        out["image"][ch] = order
        value[ch] = best[order, ch] * (-1 if negative else 1)
        out["y"][ch], out["x"][ch] = pos[order, ch] // width, pos[order, ch] % width
    return value, out


@pytest.mark.parametrize("layer", ["conv1", "conv3", "fc"])
@pytest.mark.parametrize("negative", [False, True])
def test_topk_equals_brute_force(tiny_images, mnist_model, layer, negative):
    paths = tiny_images["path"].tolist()
    k = 5
    mined = mine_topk(mnist_model, paths, [layer], k, CPU, batch_size=7, negative=negative, progress=False)[layer]
    value, ref = brute_force(all_activations(mnist_model, paths, layer), k, negative)
    np.testing.assert_allclose(mined["value"], value, rtol=1e-5, atol=1e-6)
    for key in ("image", "y", "x"):
        np.testing.assert_array_equal(mined[key], ref[key], err_msg=key)
    assert mined["value"].shape == (value.shape[0], k)


def test_shards_merge_exactly(tiny_images, mnist_model):
    paths = tiny_images["path"].tolist()
    whole = mine_topk(mnist_model, paths, ["conv2"], 4, CPU, batch_size=24, progress=False)["conv2"]
    parts = [
        mine_topk(mnist_model, paths[a:b], ["conv2"], 4, CPU, batch_size=3, offset=a, partial=True,
                   progress=False)["conv2"]
        for a, b in ((0, 2), (2, 13), (13, 24))  # the first shard holds fewer than K images
    ]
    merged = merge_topk(parts, 4)
    for key in ("value", "image", "y", "x"):
        np.testing.assert_array_equal(merged[key], whole[key], err_msg=key)


def test_ties_go_to_lower_image_index():
    # Three images, two channels; channel 0 ties everywhere (a dead ReLU).
    acts = torch.tensor([[[[0.0, 0.0]], [[1.0, 2.0]]], [[[0.0, 0.0]], [[2.0, 1.0]]], [[[0.0, 0.0]], [[2.0, 0.0]]]])
    value, y, x = spatial_extreme(acts)
    assert value.tolist() == [[0, 0, 0], [2, 2, 2]]
    assert x.tolist() == [[0, 0, 0], [1, 0, 0]]
    stats = topk_from_stats(value.T.numpy(), torch.stack((y, x), -1).transpose(0, 1).numpy(), 2, chunk=1)
    assert stats["image"].tolist() == [[0, 1], [0, 1]]


def test_from_feature_stats_equals_miner(tiny_images, mnist_model):
    from featvis.vision.features import extract_shard

    paths = tiny_images["path"].tolist()
    stats = extract_shard(mnist_model, paths, ["conv2"], CPU, batch_size=10, progress=False)["conv2"]
    from_stats = topk_from_stats(stats["max"], stats["argmax"], 6, chunk=5)
    mined = mine_topk(mnist_model, paths, ["conv2"], 6, CPU, batch_size=4, progress=False)["conv2"]
    for key in ("value", "image", "y", "x"):
        np.testing.assert_array_equal(from_stats[key], mined[key], err_msg=key)


def test_bottom_k_from_feature_stats_equals_negative_miner(tiny_images, mnist_model):
    """The features stage's minima give the miner's own bottom-K: no second pass needed."""
    from featvis.vision.features import extract_shard

    paths = tiny_images["path"].tolist()
    stats = extract_shard(mnist_model, paths, ["conv2", "fc"], CPU, batch_size=10, progress=False)
    mined = mine_topk(mnist_model, paths, ["conv2", "fc"], 6, CPU, negative=True, batch_size=4, progress=False)
    for layer in ("conv2", "fc"):
        from_stats = topk_from_stats(stats[layer]["min"], stats[layer]["argmin"], 6, chunk=5, negative=True)
        assert bool(from_stats["negative"])
        for key in ("value", "image", "y", "x"):
            np.testing.assert_array_equal(from_stats[key], mined[layer][key], err_msg=f"{layer} {key}")


def test_k_larger_than_dataset_is_capped(tiny_images, mnist_model):
    paths = tiny_images["path"].tolist()
    exact = mine_topk(mnist_model, paths[:3], ["conv1"], 3, CPU, progress=False)["conv1"]
    capped = mine_topk(mnist_model, paths[:3], ["conv1"], 4, CPU, progress=False)["conv1"]
    part = mine_topk(mnist_model, paths[:3], ["conv1"], 4, CPU, partial=True, progress=False)["conv1"]
    merged = merge_topk([part], 4)
    for key in ("value", "image", "y", "x"):
        np.testing.assert_array_equal(capped[key], exact[key], err_msg=key)
        np.testing.assert_array_equal(merged[key], exact[key], err_msg=key)
    with pytest.raises(MiningError, match="at least 1"):
        mine_topk(mnist_model, paths, ["conv1"], 0, CPU, progress=False)
