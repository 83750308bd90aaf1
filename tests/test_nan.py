"""NaN and infinite activations never enter a top-K; they are counted and reported. A hand-built
model divides one channel by its own spatial spread, which is zero on a flat image: 0/0 = NaN
and x/0 = inf there, finite on every other image."""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from featvis.core.io import read_json
from featvis.vision.embed import EmbedError, fit_embedding
from featvis.vision.features import extract_shard, merge_shards, write_shard
from featvis.vision.mining import MiningError, merge_topk, mine_topk, topk_from_stats
from featvis.vision.models import LoadedModel, Preprocess
from featvis.vision.neighbors import NeighborError, nearest

CPU = torch.device("cpu")
FLAT = 3  # the marker image: one flat colour


class DivideBySpread(nn.Module):
    """Channel 0 divided by its own spatial range, per image: infinite or NaN on a flat image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spread = x[:, :1].amax((2, 3), keepdim=True) - x[:, :1].amin((2, 3), keepdim=True)
        return torch.cat([x[:, :1] / spread, x[:, 1:]], 1)


def fragile_model() -> LoadedModel:
    torch.manual_seed(0)
    module = nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, 4, 3),  # no padding: a flat image gives a flat map
        fragile=DivideBySpread(),
        pool=nn.AdaptiveAvgPool2d(1),
        flatten=nn.Flatten(),
        fc=nn.Linear(4, 3),
    )).eval()
    return LoadedModel("fragile", module, Preprocess(12, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("nan_images")
    rng = np.random.default_rng(1)
    paths = []
    for i in range(9):
        pixels = np.full((12, 12, 3), 90, np.uint8) if i == FLAT else rng.integers(0, 256, (12, 12, 3), np.uint8)
        paths.append(str(root / f"{i}.png"))
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture(scope="module")
def model():
    return fragile_model()


def nonfinite_counts(model: LoadedModel, paths: list[str], layer: str) -> np.ndarray:
    """Per image, the non-finite values of ``layer``: the plain way, by a forward hook."""
    from featvis.vision.data import iter_batches

    seen = []
    handle = dict(model.module.named_modules())[layer].register_forward_hook(lambda m, i, o: seen.append(o))
    with torch.no_grad():
        for _, batch in iter_batches(paths, model.preprocess, 4):
            model.module(batch)
    handle.remove()
    acts = torch.cat(seen)
    return (~torch.isfinite(acts)).reshape(len(acts), -1).sum(1).numpy()


def finite_ranking(values: np.ndarray, channel: int, k: int, negative: bool = False) -> list[int]:
    """The top-K images of a channel among those with a finite value, ties to the lower index."""
    column = values[:, channel]
    keep = np.flatnonzero(np.isfinite(column))
    order = np.lexsort((keep, column[keep] if negative else -column[keep]))
    return keep[order][:k].tolist()


def test_the_marker_image_gives_nan_and_inf_in_one_channel(model, images):
    counts = nonfinite_counts(model, images, "fragile")
    assert counts[FLAT] > 0 and (np.delete(counts, FLAT) == 0).all()
    stats = extract_shard(model, images, ["fragile", "fc"], CPU, batch_size=4, progress=False)
    fragile = stats["fragile"]
    np.testing.assert_array_equal(fragile["nonfinite"], counts)
    for stat in ("mean", "max", "min"):  # missing, not ranked: NaN whatever the non-finite value was
        assert np.isnan(fragile[stat][FLAT, 0]) and np.isfinite(np.delete(fragile[stat], FLAT, 0)).all()
        assert np.isfinite(fragile[stat][FLAT, 1:]).all()  # the other channels are untouched
    assert np.isnan(stats["fc"]["max"][FLAT]).all()  # pooled into every logit


@pytest.mark.parametrize("negative", [False, True])
def test_nan_image_is_never_in_a_top_k(model, images, negative, caplog):
    k = 4
    stats = extract_shard(model, images, ["fragile", "fc"], CPU, batch_size=4, progress=False)
    counts = nonfinite_counts(model, images, "fragile")
    caplog.set_level(logging.WARNING)
    mined = mine_topk(model, images, ["fragile", "fc"], k, CPU, batch_size=2, negative=negative, progress=False)
    for layer, channels_without in (("fragile", [0]), ("fc", [0, 1, 2])):
        sign = "min" if negative else "max"
        where = "argmin" if negative else "argmax"
        from_stats = topk_from_stats(stats[layer][sign], stats[layer][where], k, chunk=3, negative=negative)
        for top in (mined[layer], from_stats):
            assert np.isfinite(top["value"]).all()
            for c in range(top["image"].shape[0]):
                expected = finite_ranking(stats[layer][sign], c, k, negative)
                assert top["image"][c].tolist() == expected, (layer, c)
                assert FLAT not in top["image"][c] or c not in channels_without
            assert top["nonfinite_images"].tolist() == [FLAT]
            assert top["nonfinite_pairs"].tolist() == [len(channels_without)]
        np.testing.assert_array_equal(mined[layer]["image"], from_stats["image"])
        assert int(from_stats["nonfinite_activations"]) == -1  # counted by the features stage
    assert int(mined["fragile"]["nonfinite_activations"]) == counts[FLAT]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("left out of some channels' rankings" in m for m in warnings), warnings


def test_shards_merge_with_their_records(model, images):
    whole = mine_topk(model, images, ["fragile"], 4, CPU, progress=False)["fragile"]
    parts = [mine_topk(model, images[a:b], ["fragile"], 4, CPU, offset=a, partial=True, progress=False)["fragile"]
             for a, b in ((0, 3), (3, 5), (5, 9))]  # the flat image leads the second shard
    assert np.isnan(parts[1]["value"][0]).any()  # a shard keeps it (ranked last) for the merge to cut
    merged = merge_topk(parts, 4)
    for key in ("value", "image", "y", "x", "nonfinite_images", "nonfinite_pairs", "nonfinite_activations"):
        np.testing.assert_array_equal(merged[key], whole[key], err_msg=key)


def test_features_merge_records_and_warns(model, images, tmp_path, caplog):
    for i, (a, b) in enumerate(((0, 5), (5, 9))):
        write_shard(extract_shard(model, images[a:b], ["fragile"], CPU, progress=False), tmp_path / str(i))
    caplog.set_level(logging.WARNING)
    merge_shards([tmp_path / "0" / "fragile.npz", tmp_path / "1" / "fragile.npz"], tmp_path / "merged",
                 model="fragile", layer="fragile")
    record = read_json(tmp_path / "merged" / "meta.json")["nonfinite"]
    counts = nonfinite_counts(model, images, "fragile")
    assert record == {"activations": int(counts.sum()), "images": 1, "image_indices": [FLAT]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{counts.sum()} non-finite" in m and "fragile" in m for m in warnings), warnings


def test_k_is_capped_at_the_images_a_channel_can_rank(model, images, caplog):
    caplog.set_level(logging.WARNING)
    three = images[2:5]  # the flat image among them: channel 0 can rank only 2
    top = mine_topk(model, three, ["fragile"], 3, CPU, progress=False)["fragile"]
    assert top["image"].shape == (4, 2) and np.isfinite(top["value"]).all()  # K = 2 for every channel
    assert FLAT not in top["image"][0]
    assert any("k capped from 3 to 2" in r.getMessage() for r in caplog.records)
    with pytest.raises(MiningError, match="channel\\(s\\) 0 have no image with finite activations"):
        mine_topk(model, [images[FLAT]] * 2, ["fragile"], 1, CPU, progress=False)


def test_neighbors_and_embed_refuse_nan_rows_by_name(model, images):
    features = extract_shard(model, images, ["fragile"], CPU, progress=False)["fragile"]["mean"]
    with pytest.raises(NeighborError, match=f"1 of 9 images have NaN or infinite features \\(rows {FLAT}\\)"):
        nearest(features, [0, 1], 2)
    with pytest.raises(EmbedError, match=f"1 of 9 images have NaN or infinite features \\(rows {FLAT}\\)"):
        fit_embedding(features, "pca")
    finite = np.delete(features, FLAT, 0)  # without the image, both work
    assert nearest(finite, [0], 2)[0].shape == (1, 2)
    assert np.isfinite(fit_embedding(finite, "pca")[0]).all()
