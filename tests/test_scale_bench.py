"""The scale benchmark's helpers (benchmarks/): the image generator and the merge simulation."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import scale  # noqa: E402
import scale_data  # noqa: E402
import scale_merge  # noqa: E402

from featvis.vision.data import check_images, folder_rows  # noqa: E402


def _digests(paths):
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def test_generator_is_deterministic_and_decodes(tmp_path):
    n = scale_data.PNG_EVERY + 3  # at least one PNG
    first = scale_data.generate(tmp_path / "a", n, seed=3)
    second = scale_data.generate(tmp_path / "b", n, seed=3, workers=2, chunk=7)  # other chunking, in parallel
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert _digests(first) == _digests(second)
    assert _digests(scale_data.generate(tmp_path / "c", 4, seed=4)) != _digests(first[:4])
    assert {p.suffix for p in first} == {".jpg", ".png"}
    manifest, skipped, quality = check_images(folder_rows(tmp_path / "a"))  # every file decodes
    assert len(manifest) == n and skipped.empty
    low, high = scale_data.SIDE_RANGE
    assert quality["width"].between(low, high).all() and quality["height"].between(low, high).all()
    assert manifest["label"].nunique() == len(scale_data.photos())


def test_generator_rejects_no_images(tmp_path):
    with pytest.raises(ValueError, match="at least 1 image"):
        scale_data.generate(tmp_path, 0)


def test_merge_simulation_matches_direct_computation(tmp_path):
    n_shards, per_shard, channels, k = 5, 4, 6, 9  # shards smaller than K: the merge must still be exact
    scale_merge.write_shards(tmp_path, n_shards, per_shard, channels, k, seed=1)
    stats = [scale_merge.synthetic_stats(i, per_shard, channels, seed=1) for i in range(n_shards)]
    maxima = np.concatenate([s["max"] for s in stats])
    argmax = np.concatenate([s["argmax"] for s in stats])

    scale_merge.merge_features(tmp_path, n_shards)
    for stat in ("mean", "max", "argmax", "min", "argmin"):
        merged = np.load(tmp_path / "merged" / f"{stat}.npy")
        np.testing.assert_array_equal(merged, np.concatenate([s[stat] for s in stats]))

    # the direct answer: over all images, the K largest per channel, ties to the lower image
    order = np.argsort(-maxima, axis=0, kind="stable")[:k].T
    channel = np.arange(channels)[:, None]
    for topk in (scale_merge.merge_miner(tmp_path, n_shards, k), scale_merge.topk_merged(tmp_path, k)):
        np.testing.assert_array_equal(topk["image"], order)
        np.testing.assert_array_equal(topk["value"], maxima[order, channel])
        np.testing.assert_array_equal(topk["y"], argmax[order, channel, 0])
        np.testing.assert_array_equal(topk["x"], argmax[order, channel, 1])


def _run(n: int, costs: dict[str, float]) -> dict:
    return {"stages": {name: {"images": n, "cpu_s": cost} for name, cost in costs.items()}}


def test_extrapolation_recovers_a_power_law_and_checks_itself():
    """Stages whose cost is a * N^b: two runs give b back, and the prediction at a third N is exact;
    per-image stages keep their ratio to the forward pass."""
    def costs(n):
        return {"forward": 0.04 * n, "features": 0.041 * n, "embed_tsne": 0.5 * n**0.8, "gallery": 3.0}

    runs = {n: _run(n, costs(n)) for n in (10_000, 30_000)}
    base, forward, predicted = scale.predict(runs, 100_000)
    assert base == 30_000 and forward == pytest.approx(costs(100_000)["forward"])
    assert predicted["features"][0] == pytest.approx(costs(100_000)["features"])
    fitted, linear, b, used = predicted["embed_tsne"]
    assert (b, used) == (pytest.approx(0.8), [10_000, 30_000])
    assert fitted == pytest.approx(costs(100_000)["embed_tsne"]) and linear > fitted
    assert predicted["gallery"][:3] == (pytest.approx(3.0), pytest.approx(10.0), pytest.approx(0.0))

    # the check at 100,000 against a run that grew faster than the fit: measured / fitted shows it
    measured = {**costs(100_000), "embed_tsne": 2 * costs(100_000)["embed_tsne"]}
    del measured["forward"]  # the large run's forward pass is not measured, as in the benchmark
    table = scale.extrapolation_check({**runs, 100_000: _run(100_000, measured)}, 100_000)
    row = next(line for line in table if line.startswith("| embed_tsne"))
    assert row.endswith("| 2.00 |")
    assert not any(line.startswith("| features") for line in table)  # per-image stages are not "checked"


def test_estimated_forward_scales_per_image_cost():
    runs = {10_000: _run(10_000, {"forward": 400.0}), 100_000: _run(100_000, {"features": 4100.0})}
    runs[10_000]["stages"]["forward"]["work_s"] = 420.0
    scale.estimate_forward(runs)
    estimate = runs[100_000]["stages"]["forward"]
    assert estimate["estimated_from"] == 10_000
    assert (estimate["cpu_s"], estimate["work_s"]) == (pytest.approx(4000.0), pytest.approx(4200.0))
