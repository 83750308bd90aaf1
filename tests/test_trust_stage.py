"""The trust stage's layer record (featvis.trust.stage), seed stability (featvis.trust.seeds) and the
gallery's trust panel, on a small random CNN: every number recorded, and the bad inputs of issue 20
(fewer than K images, a unit that never fires, no features stage) said in words, with no score."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from featvis.gallery import trust_panel
from featvis.render import RenderSettings
from featvis.render.recipes import render_channels
from featvis.render.transforms import derive_seed
from featvis.trust import path, stage
from featvis.trust.seeds import mean_pair_cosine, seed_stability

LAYER, SIZE, SEEDS = "4", 16, 3
SETTINGS = RenderSettings(size=SIZE, steps=2, mean=(0.5,) * 3, std=(0.25,) * 3, transforms="none", snapshots=[])


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Conv2d(8, 6, 3)).eval()
    generator = torch.Generator().manual_seed(1)
    # natural stand-ins: smooth random images (blurred noise), each with its own colour cast
    images = torch.nn.functional.avg_pool2d(torch.randn(20, 3, 24, 24, generator=generator), 5, 1)
    images = images + torch.randn(20, 3, 1, 1, generator=generator)
    _, peak = path.pooled_vectors(model, images, [LAYER], unit=(LAYER, 0))
    with torch.no_grad():
        maxima = model(images).flatten(2).amax(2).numpy()  # (N, C) per-image maxima, as the features stage
    rng = np.random.default_rng(2)
    renders = rng.uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    seeds = (rng.uniform(0, 1, (2 * SEEDS, SIZE, SIZE, 3)).astype(np.float32), list(range(2 * SEEDS)))
    return model, images, maxima, renders, seeds


def layer_record(world, maxima=None, natural=True, **options):
    model, images, default_maxima, renders, seeds = world
    maxima = default_maxima if maxima is None else maxima
    found = stage.Natural("photos", maxima, [f"{i}.png" for i in range(len(maxima))]) if natural else None
    return stage.check_job(model, LAYER, [0, 1], renders, ["channel0000_copy0", "channel0001_copy0"], SETTINGS,
                           stage.TrustOptions(**{"k": 4, **options}), found, lambda rows: images[rows], seeds,
                           None, model_name="tiny")


def test_layer_record_holds_every_number(world):
    record = layer_record(world, threshold=0.3)
    json.dumps(record, allow_nan=False)  # plain JSON, no NaN
    assert record["probe_layers"] == ["0", "1", "2", "3", LAYER] and record["threshold"] == 0.3
    assert record["reference"] == "bottom" and record["dataset"] == "photos" and record["missing"] is None
    for unit in record["units"]:
        values = world[2][:, unit["channel"]]
        assert unit["top_images"] == list(np.argsort(-values, kind="stable")[:4])
        assert set(unit["reference_images"]) == set(np.argsort(values, kind="stable")[:4])
        (check,) = unit["checks"]
        assert check["status"] == "ok" and len(check["layers"]) == 5
        assert check["verdict"] == (path.SAME_PATH if check["score"] >= 0.3 else path.OTHER_PATH)
        stability = unit["seed_stability"]
        assert len(stability["seeds"]) == SEEDS and [r["layer"] for r in stability["layers"]] == record["probe_layers"]
        assert -1 <= stability["seeds_mean"] <= 1 and -1 <= stability["top_mean"] <= 1
    assert layer_record(world, reference="random")["reference"] == "random (seed 0)"


def test_fewer_than_k_images_the_check_says_so(world):
    record = layer_record(world, maxima=world[2][:6])  # 6 images: top 4, only 2 left for reference
    check = record["units"][0]["checks"][0]
    assert check["status"] == "too_few_images" and check["score"] is None
    assert "only 2 reference images, 4 asked" in check["notes"]
    html = trust_panel.panel([trust_panel_record(record, 0)], rendered=True)
    assert "too few images to compare" in html and "only 2 reference images, 4 asked" in html and "no score" in html


def test_a_unit_that_never_fires_gets_no_score(world):
    maxima = world[2].copy()
    maxima[:, 1] = 0.0
    unit = layer_record(world, maxima=maxima)["units"][1]
    assert unit["checks"][0]["status"] == "never_fires" and unit["checks"][0]["score"] is None
    html = trust_panel.panel([{**unit, "job": "j", "k": 4, "reference": "bottom", "dataset": "photos",
                               "probe_rule": "r", "missing": None}], rendered=True)
    assert "this unit never fires on this dataset" in html and "no score" in html and "<svg" not in html


def test_without_the_features_stage_the_panel_says_what_is_missing(world):
    record = layer_record(world, natural=False)
    assert record["dataset"] is None and "features stage did not run on layer 4 of tiny" in record["missing"]
    check = record["units"][0]["checks"][0]
    assert check["status"] == "no_features" and check["score"] is None
    assert record["units"][0]["seed_stability"]["top_mean"] is None  # no natural yardstick
    html = trust_panel.panel([trust_panel_record(record, 0)], rendered=True)
    assert "no path check" in html and "add 4 to the layers of an analysis of tiny" in html


def trust_panel_record(record, channel):
    return stage.unit_records(record, "tiny", "job")[channel]


def test_panel_shows_curve_verdict_stability_and_sources(world):
    record = trust_panel_record(layer_record(world), 0)
    html = trust_panel.panel([record], rendered=True)
    check = record["checks"][0]
    assert check["verdict"] in html and f"score {check['score']:.2f}" in html
    assert html.count("<polyline") == 4 and "render vs top images" in html and "Seed stability" in html
    assert "ICML 2024" in html and "Distill 2017" in html
    assert trust_panel.unit_score([record]) == check["score"]
    assert trust_panel.panel([record], rendered=True) == html  # deterministic
    assert "trust stage did not run" in trust_panel.panel([], rendered=True)
    assert trust_panel.panel([], rendered=False) == ""


def test_seed_stability_known_answers():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    same = seed_stability(["x"], {"x": a.repeat(3, 1)}, [0, 1, 2], others={"x": -a})
    assert same.seeds_mean == pytest.approx(1.0) and same.others_mean == pytest.approx(-1.0)
    assert same.top_mean is None and not same.standardised
    assert mean_pair_cosine(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) == pytest.approx(0.0)


def test_seed_zero_is_the_render_jobs_copy_zero(world):
    """The stability set's seed 0 is the render job's copy 0 (same seed, same objective), so a job's
    copy 0 can stand in for it, and the extra seeds follow the job's seed derivation."""
    model = world[0]
    job = render_channels(model, LAYER, [2], SETTINGS, seed=7)
    images, seeds = stage.seed_renders(model, LAYER, [2], SETTINGS, 7, 2, "cpu")
    np.testing.assert_allclose(images[0], job.result.images[0], atol=1e-6)  # batch of 2 vs 1: float rounding
    assert seeds == [derive_seed(7, LAYER, 2, 0), derive_seed(7, LAYER, 2, 1)] and seeds[0] == job.result.seeds[0]
    reused, _ = stage.seed_renders(model, LAYER, [2], SETTINGS, 7, 2, "cpu", reuse={2: job.result.images[0]})
    np.testing.assert_allclose(reused, images, atol=1e-6)


def test_trust_options_resolve_with_defaults_and_refuse_bad_values():
    from pathlib import Path

    from featvis.core.config import ConfigError, load_yaml, resolve

    root = Path(__file__).resolve().parents[1]
    schema = load_yaml(root / "workflow/schemas/config.schema.yaml")
    base = {"models": {"lite": {"architecture": "efficientnet_lite0"}}}
    assert resolve(base, schema)["trust"] == {"enabled": True, "k": 8, "reference": "bottom", "seeds": 3,
                                              "probe_layers": "blocks", "threshold": path.THRESHOLD}
    assert resolve(load_yaml(root / "config/config.yaml"), schema)["trust"]["enabled"] is True
    for bad, words in (({"reference": "middle"}, "trust.reference"), ({"k": 2}, "trust.k"),
                       ({"seeds": 1}, "trust.seeds")):
        with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
            resolve({**base, "trust": bad}, schema)
