"""The one resolved config: schema checks with clear messages, defaults filled once, job
settings merged in their documented order, stage layer lists following the analysis."""

from __future__ import annotations

from pathlib import Path

import pytest

from featvis.core.config import ConfigError, load_yaml, resolve

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = load_yaml(ROOT / "workflow/schemas/config.schema.yaml")
DEFAULT = load_yaml(ROOT / "config/config.yaml")


def user_config(**extra):
    return {
        "datasets": {"birds": {"source": "folder", "path": "/data/birds"}},
        "models": {"lite": {"architecture": "efficientnet_lite0"}},
        "analyses": [{"model": "lite", "dataset": "birds", "layers": ["_blocks.10"]}],
        **extra,
    }


def test_render_defaults_reach_every_job():
    config = dict(DEFAULT)
    config["render"] = {**DEFAULT["render"], "defaults": {**DEFAULT["render"]["defaults"], "steps": 8}}
    resolved = resolve(config, SCHEMA)
    assert resolved["render"]["jobs"]["blocks10"]["steps"] == 8
    # a job's own key beats render.defaults; figure jobs get the defaults too
    assert resolved["render"]["figures"]["addition"]["blocks10"]["steps"] == 48


def test_job_order_schema_defaults_then_render_defaults_then_job():
    config = user_config(render={"defaults": {"lr": 0.1},
                                 "jobs": {"a": {"model": "lite", "layer": "_blocks.10", "channels": [0], "lr": 0.2},
                                          "b": {"model": "lite", "layer": "_blocks.10", "channels": [0]}}})
    jobs = resolve(config, SCHEMA)["render"]["jobs"]
    assert jobs["a"]["lr"] == 0.2 and jobs["b"]["lr"] == 0.1
    assert jobs["b"]["steps"] == 64 and jobs["b"]["copies"] == 1  # schema defaults fill the rest
    assert jobs["b"]["seed"] == 0


def test_top_level_seed_reaches_render_jobs_and_protein_stage():
    config = user_config(seed=7, threads=3, device="cpu", attention={"variants": "v.tsv", "threads": 1},
                         render={"jobs": {"a": {"model": "lite", "layer": "_blocks.10", "channels": [0]}}})
    resolved = resolve(config, SCHEMA)
    assert resolved["render"]["jobs"]["a"]["seed"] == 7
    assert resolved["attention"]["seed"] == 7 and resolved["attention"]["device"] == "cpu"
    assert resolved["attention"]["threads"] == 1  # an explicit override stays


def test_a_users_config_has_no_demo_in_it():
    resolved = resolve(user_config(), SCHEMA)
    assert list(resolved["datasets"]) == ["birds"] and list(resolved["models"]) == ["lite"]
    assert resolved["render"]["jobs"] == {} and "variants" not in resolved["attention"]
    assert resolved["features"]["batch_size"] == 64 and resolved["patches"]["k"] == 9


def test_stage_layers_follow_the_analysis():
    config = user_config(analyses=[{"model": "lite", "dataset": "birds", "layers": ["_blocks.4", "_blocks.10", "_fc"]}])
    shapes = {"_blocks.4": (40, 20, 20), "_blocks.10": (112, 10, 10), "_fc": (1000,)}
    views = resolve(config, SCHEMA, layer_shapes=lambda model: shapes)["analyses"][0]["views"]
    assert views["patches"] == views["neighbors"] == views["embed"] == ["_blocks.4", "_blocks.10", "_fc"]
    assert views["attribution"] == ["_blocks.4", "_blocks.10"]  # projections need a spatial layer
    assert views["cam"] == ["_blocks.10"]  # the last spatial one


def test_explicit_stage_layer_must_be_analysed():
    config = user_config(embed={"layers": {"lite": ["_conv_head"]}})
    with pytest.raises(ConfigError, match=r"embed.layers.lite: '_conv_head' is not an analysis layer of lite on birds"):
        resolve(config, SCHEMA)


def test_analyses_of_one_pair_merge():
    config = user_config(analyses=[{"model": "lite", "dataset": "birds", "layers": ["a", "b"]},
                                   {"model": "lite", "dataset": "birds", "layers": ["b", "c"]}])
    assert resolve(config, SCHEMA)["analyses"][0]["layers"] == ["a", "b", "c"]


@pytest.mark.parametrize(("change", "message"), [
    ({"featurs": {}}, "featurs: unknown key; did you mean 'features'"),
    ({"features": {"batch_size": "8"}}, "features.batch_size: expected an integer, got '8' (a string)"),
    ({"embed": {"methods": ["tnse"]}}, "embed.methods[0]: 'tnse' is not one of pca, tsne, umap; did you mean 'tsne'"),
    ({"datasets": {"birds": {"path": "/x"}}}, "datasets.birds: missing required key 'source'"),
    ({"render": {"jobs": {"a": {"model": "lite", "layer": "x", "channels": [0], "stesp": 2}}}},
     "render.jobs.a.stesp: unknown key; did you mean 'steps'"),
    ({"render": {"jobs": {"a": {"model": "lite", "layer": "x", "channels": [0],
                                "objectives": {"o": {"channel": {"channel": 1}}}}}}},
     "render.jobs.a: 'channels' cannot be combined with the other keys given here"),
    ({"analyses": [{"model": "vgg", "dataset": "birds", "layers": ["x"]}]},
     "analyses[0].model: 'vgg' is not in models"),
])
def test_mistakes_name_the_key(change, message):
    with pytest.raises(ConfigError) as caught:
        resolve(user_config(**change), SCHEMA)
    assert message in str(caught.value)


def test_default_config_resolves_and_keeps_its_demo():
    resolved = resolve(DEFAULT, SCHEMA)
    assert set(resolved["datasets"]) == {"photos", "mnist5k"} and set(resolved["render"]["jobs"]) == {
        "blocks10", "blocks10_diversity"}
