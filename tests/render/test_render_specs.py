"""Objective specs from the config: every kind builds, renders and rises; known answers; bad input."""

import re
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from featvis.core.hooks import UnknownLayerError, capture, run_to_layers
from featvis.render import RenderSettings, render, specs
from featvis.render import objectives as obj
from featvis.render.jobs import job_objectives
from featvis.render.objectives import ChannelOutOfRangeError
from featvis.render.recipes import render_objectives
from featvis.render.specs import SpecContext, SpecError, UnknownNameError, build_objective, build_objectives
from featvis.vision.models import load_model

REPO = Path(__file__).resolve().parents[2]
MNIST_SETTINGS = dict(size=28, steps=10, transforms="none", snapshots=())


@pytest.fixture(scope="module")
def mnist():
    """The pipeline's MNIST CNN, seeded random weights (the trained ones are a pipeline output)."""
    torch.manual_seed(0)
    return load_model({"architecture": "mnist_cnn", "allow_random": True})


@pytest.fixture(scope="module")
def effnet_model():
    torch.set_num_threads(2)
    return load_model("efficientnet_lite0")


def write_features(folder: Path, labels: list[str], width: int, seed: int = 0) -> tuple[Path, Path]:
    """A features-stage mean.npy (images x channels) and a manifest with those labels, in row order."""
    folder.mkdir(parents=True, exist_ok=True)
    means = np.random.default_rng(seed).normal(size=(len(labels), width)).astype(np.float32)
    np.save(folder / "mean.npy", means)
    rows = [{"path": f"img{i}.png", "label": label, "split": "train", "sha1": "0"} for i, label in enumerate(labels)]
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder / "mean.npy", folder / "manifest.csv"


def mnist_context(mnist, layer="conv2", features=None) -> SpecContext:
    return SpecContext.for_model(mnist, layer=layer, features=features)


def activations(model, layers, in_channels=1, size=28, seed=0) -> dict:
    """Activations of a seeded random batch of 3 images, the same for every spec of a test."""
    image = torch.rand(3, in_channels, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad(), capture(model, layers) as acts:
        run_to_layers(model, image, acts)
    return dict(acts)


# --- every kind renders and rises ---------------------------------------------------


def test_every_kind_rises_in_one_batched_render(mnist, tmp_path):
    labels = ["3", "8", "3", "1", "8"]
    files = write_features(tmp_path / "conv3", labels, 64)
    ctx = mnist_context(mnist, features=lambda dataset, layer: files)
    vector = np.random.default_rng(1).normal(size=32).tolist()
    items = {
        "neuron": {"neuron": {"channel": 3}},
        "neuron_corner": {"neuron": {"layer": "conv1", "channel": 2, "y": 1, "x": 2}},
        "channel": {"channel": {"layer": "conv3", "channel": 5}},
        "deepdream": {"layer": {}},
        "logit": {"class_logit": {"class": 3}},
        "probability": {"class_probability": {"class": "7"}},
        "vector": {"direction": {"vector": vector}},
        "classes": {"direction": {"layer": "conv3", "classes": [3, 8], "dataset": "mnist5k"}},
        "sum": {"sum": [{"channel": {"channel": 1}}, {"weight": -0.5, "neuron": {"layer": "conv1", "channel": 0}}]},
        "negate": {"negate": {"channel": {"channel": 4}}},
        "weighted": {"weight": 2.0, "channel": {"channel": 6}},
    }
    objectives = build_objectives(items, ctx)
    pre = mnist.preprocess
    settings = RenderSettings(mean=pre.mean, std=pre.std, **MNIST_SETTINGS)
    batch = render_objectives(mnist.module, objectives, settings, seed=0)
    assert batch.names == list(items)
    # no transforms: trace[0] is the objective of the starting image, final that of the last one
    rose = batch.result.final - batch.result.trace[0]
    assert (rose > 0).all(), dict(zip(items, rose.round(4), strict=True))


def test_espresso_by_name_rises_on_efficientnet(effnet_model):
    ctx = SpecContext.for_model(effnet_model, layer="_blocks.10")
    objectives = build_objectives({"espresso": {"class_logit": {"class": "espresso"}},
                                   "channel": {"channel": {"channel": 7}}}, ctx)
    pre = effnet_model.preprocess
    settings = RenderSettings(size=64, steps=12, transforms="none", mean=pre.mean, std=pre.std)
    result = render_objectives(effnet_model.module, objectives, settings, seed=0).result
    assert (result.final > result.trace[0]).all()
    assert result.activations["_fc"][0, 967] == pytest.approx(result.final[0])  # the name read logit 967
    assert result.final[0] > result.trace[0, 0] + 10


def test_renders_are_seeded_by_item_name(mnist):
    ctx = mnist_context(mnist)
    pre = mnist.preprocess
    settings = RenderSettings(mean=pre.mean, std=pre.std, **{**MNIST_SETTINGS, "steps": 3})
    a = build_objectives({"x": {"channel": {"channel": 1}}, "y": {"channel": {"channel": 2}}}, ctx)
    b = build_objectives({"y": {"channel": {"channel": 2}}}, ctx)
    first = render_objectives(mnist.module, a, settings, seed=5).result
    alone = render_objectives(mnist.module, b, settings, seed=5).result
    assert first.seeds[1] == alone.seeds[0]
    # same start and steps; batched convolutions may differ in the last bits
    np.testing.assert_allclose(first.images[1], alone.images[0], atol=1e-5)


# --- known answers ------------------------------------------------------------------


def test_sum_negate_and_weight_are_the_arithmetic_of_their_parts(mnist):
    ctx = mnist_context(mnist)
    acts = activations(mnist.module, ["conv1", "conv2", "conv3"])
    a = {"channel": {"channel": 1}}
    b = {"neuron": {"layer": "conv1", "channel": 0, "y": 3, "x": 4}}
    c = {"layer": {"layer": "conv3"}}
    part = {name: build_objective(spec, ctx)(acts) for name, spec in (("a", a), ("b", b), ("c", c))}
    total = build_objective({"sum": [{"weight": 1.5, **a}, {"weight": -0.5, **b}, c]}, ctx)(acts)
    torch.testing.assert_close(total, 1.5 * part["a"] - 0.5 * part["b"] + part["c"])
    torch.testing.assert_close(build_objective({"negate": a}, ctx)(acts), -part["a"])
    torch.testing.assert_close(build_objective({"weight": -3, **c}, ctx)(acts), -3 * part["c"])
    # and the parts are what they say, read straight off the activations
    torch.testing.assert_close(part["a"], acts["conv2"][:, 1].mean((1, 2)))
    torch.testing.assert_close(part["b"], acts["conv1"][:, 0, 3, 4])
    torch.testing.assert_close(part["c"], acts["conv3"].pow(2).mean((1, 2, 3)))


def test_neuron_defaults_to_the_centre_of_the_grid(mnist):
    ctx = mnist_context(mnist)
    acts = activations(mnist.module, ["conv2"])
    height, width = acts["conv2"].shape[-2:]
    centre = build_objective({"neuron": {"channel": 3}}, ctx)(acts)
    torch.testing.assert_close(centre, acts["conv2"][:, 3, height // 2, width // 2])


def test_class_kinds_read_the_models_output_layer(mnist, effnet_model):
    assert mnist_context(mnist).output_layer("x") == "fc"
    effnet = SpecContext.for_model(effnet_model)
    assert effnet.output_layer("x") == "_fc"
    assert effnet.class_names[967] == "espresso"
    by_name = build_objective({"class_logit": {"class": "Espresso"}}, effnet)  # case is forgiven when unique
    assert by_name.layers == ("_fc",) and by_name.name == obj.class_logit("_fc", 967).name
    acts = activations(mnist.module, ["fc"])
    logits = acts["fc"].double().numpy()
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ctx = mnist_context(mnist)
    np.testing.assert_allclose(build_objective({"class_logit": {"class": "4"}}, ctx)(acts).numpy(), logits[:, 4],
                               rtol=1e-6)
    np.testing.assert_allclose(build_objective({"class_probability": {"class": 4}}, ctx)(acts).numpy(),
                               probs[:, 4], rtol=1e-5)


def test_direction_from_classes_is_the_numpy_mean_difference(mnist, tmp_path):
    labels = ["3", "8", "3", "1", "8", "3"]
    mean_path, manifest_path = write_features(tmp_path, labels, 32, seed=4)
    means = np.load(mean_path).astype(np.float64)
    expected = means[[0, 2, 5]].mean(0) - means[[1, 4]].mean(0)
    np.testing.assert_allclose(specs.class_direction(mean_path, manifest_path, 3, "8"), expected)

    asked = []
    ctx = mnist_context(mnist, features=lambda dataset, layer: asked.append((dataset, layer)) or (mean_path,
                                                                                                   manifest_path))
    acts = activations(mnist.module, ["conv2"])
    score = build_objective({"direction": {"classes": ["3", "8"], "dataset": "mnist5k"}}, ctx)(acts)
    dot = np.einsum("bchw,c->bhw", acts["conv2"].double().numpy(), expected).mean((1, 2))
    np.testing.assert_allclose(score.numpy(), dot, rtol=1e-4, atol=1e-5)
    assert asked == [("mnist5k", "conv2")]


def test_direction_from_a_npy_file_and_cosine(mnist, tmp_path):
    vector = np.random.default_rng(2).normal(size=32)
    np.save(tmp_path / "dir.npy", vector)
    ctx = mnist_context(mnist)
    acts = activations(mnist.module, ["conv2"])
    from_file = build_objective({"direction": {"vector": str(tmp_path / "dir.npy")}}, ctx)(acts)
    torch.testing.assert_close(from_file, obj.direction("conv2", torch.tensor(vector, dtype=torch.float32))(acts))
    cosine = build_objective({"direction": {"vector": vector.tolist(), "cosine": True}}, ctx)(acts)
    assert (cosine.abs() <= 1).all()
    torch.testing.assert_close(cosine, obj.direction("conv2", torch.tensor(vector, dtype=torch.float32),
                                                     cossim=True)(acts))


def test_a_registered_kind_is_built_like_the_others(mnist, monkeypatch):
    monkeypatch.setitem(specs.SPECS, "two_channels", None)  # removed again after the test

    @specs.register_spec("two_channels")
    def two_channels(args, ctx, where):
        args = specs.spec_args(args, where, ["a", "b"], ["layer"])
        layer = ctx.layer_of(args, where)
        return obj.channel(layer, specs.index_in(ctx, layer, args["a"], where)) + obj.channel(
            layer, specs.index_in(ctx, layer, args["b"], where))

    ctx = mnist_context(mnist)
    acts = activations(mnist.module, ["conv2"])
    built = build_objective({"weight": 2, "two_channels": {"a": 1, "b": 2}}, ctx)
    torch.testing.assert_close(built(acts), 2 * (obj.channel("conv2", 1)(acts) + obj.channel("conv2", 2)(acts)))
    with pytest.raises(ChannelOutOfRangeError, match="channel 40 is out of range for layer 'conv2', which has 32"):
        build_objective({"two_channels": {"a": 1, "b": 40}}, ctx)


# --- bad input ----------------------------------------------------------------------


def test_unknown_kind_lists_the_closest_kinds(mnist):
    message = r"objectives\.a: unknown objective kind 'chanel' \(closest: channel; 8 in all\); kinds: channel, "
    with pytest.raises(UnknownNameError, match=message):
        build_objectives({"a": {"chanel": {"channel": 1}}}, mnist_context(mnist))


def test_channel_and_class_out_of_range_name_the_layer_and_its_width(mnist):
    ctx = mnist_context(mnist)
    with pytest.raises(ChannelOutOfRangeError,
                       match=r"objectives\.a\.sum\[1\]\.neuron: channel 16 is out of range for layer 'conv1', "
                             r"which has 16 channels \(valid: 0\.\.15\)"):
        build_objectives({"a": {"sum": [{"channel": {"channel": 0}},
                                        {"neuron": {"layer": "conv1", "channel": 16}}]}}, ctx)
    with pytest.raises(ChannelOutOfRangeError, match="class 10 is out of range for layer 'fc', which has 10 classes"):
        build_objective({"class_logit": {"class": 10}}, ctx)
    with pytest.raises(ChannelOutOfRangeError, match="channel -1 is out of range"):
        build_objective({"channel": {"channel": -1}}, ctx)


def test_unknown_class_lists_the_closest_class_names(effnet_model, mnist):
    effnet = SpecContext.for_model(effnet_model)
    with pytest.raises(UnknownNameError, match=r"unknown class 'espreso' \(closest: espresso, .*1000 in all\)"):
        build_objective({"class_probability": {"class": "espreso"}}, effnet)
    with pytest.raises(UnknownNameError, match="unknown class 'seven'"):
        build_objective({"class_logit": {"class": "seven"}}, mnist_context(mnist))


def test_missing_npy_and_wrong_vector_length(mnist, tmp_path):
    ctx = mnist_context(mnist)
    with pytest.raises(FileNotFoundError, match="direction file '.*nowhere.npy' not found"):
        build_objective({"direction": {"vector": str(tmp_path / "nowhere.npy")}}, ctx)
    np.save(tmp_path / "short.npy", np.ones(5))
    with pytest.raises(SpecError, match="the direction has 5 components but layer 'conv2' has 32 channels"):
        build_objective({"direction": {"vector": str(tmp_path / "short.npy")}}, ctx)
    np.save(tmp_path / "matrix.npy", np.ones((2, 32)))
    with pytest.raises(SpecError, match=r"1-D array of finite numbers, one per channel; got shape \(2, 32\)"):
        build_objective({"direction": {"vector": str(tmp_path / "matrix.npy")}}, ctx)


def test_bad_class_directions(mnist, tmp_path):
    labels = ["3", "8", "3"]
    files = write_features(tmp_path / "ok", labels, 32)
    ctx = mnist_context(mnist, features=lambda dataset, layer: files)
    with pytest.raises(UnknownNameError, match=r"no image is labelled 'seven' in .*: unknown label 'seven' \(2 in"):
        build_objective({"direction": {"classes": ["3", "seven"], "dataset": "d"}}, ctx)
    stale = write_features(tmp_path / "stale", labels, 32)
    pd.DataFrame([{"path": "x", "label": "3", "split": "all", "sha1": "0"}]).to_csv(stale[1], index=False)
    with pytest.raises(SpecError, match="shape \\(3, 32\\) but the manifest lists 1 images"):
        build_objective({"direction": {"classes": ["3", "8"], "dataset": "d"}},
                        mnist_context(mnist, features=lambda d, layer: stale))
    missing = mnist_context(mnist, features=lambda d, layer: (tmp_path / "none.npy", files[1]))
    with pytest.raises(FileNotFoundError, match="none.npy' not found; the features stage writes it"):
        build_objective({"direction": {"classes": ["3", "8"], "dataset": "d"}}, missing)
    with pytest.raises(SpecError, match="two different dataset labels"):
        build_objective({"direction": {"classes": ["3"], "dataset": "d"}}, ctx)
    with pytest.raises(SpecError, match="either `vector` or `classes`"):
        build_objective({"direction": {"vector": [0.0] * 32, "classes": ["3", "8"], "dataset": "d"}}, ctx)


@pytest.mark.parametrize("spec, message", [
    ({"channel": {"channel": 1}, "layer": {}}, "exactly one kind key"),
    ({"weight": 2}, "exactly one kind key"),
    ("channel", "an objective spec is a mapping"),
    ({"channel": {"chanel": 1}}, "missing channel; unknown argument\\(s\\) chanel \\(arguments: channel, layer\\)"),
    ({"channel": {"channel": 1}, "weight": "two"}, "weight: a number"),
    ({"neuron": {"channel": 1, "x": -2}}, "neuron.x: a non-negative integer"),
    ({"neuron": {"layer": "fc", "channel": 1}}, "layer 'fc' has no spatial grid"),
    ({"sum": []}, "sum: a non-empty list of specs"),
])
def test_malformed_specs_say_what_and_where(mnist, spec, message):
    with pytest.raises(SpecError, match=message):
        build_objective(spec, mnist_context(mnist))


def test_unknown_layer_and_no_layer(mnist):
    message = r"objective.channel: unknown layer 'conv9' \(closest: conv3, conv2, conv1; 11 in all\)"
    with pytest.raises(UnknownLayerError, match=message):
        build_objective({"channel": {"layer": "conv9", "channel": 0}}, mnist_context(mnist))
    with pytest.raises(SpecError, match="no layer: give `layer:` here or in the job"):
        build_objective({"layer": {}}, mnist_context(mnist, layer=None))


def test_bad_item_names_and_job_options(mnist):
    with pytest.raises(SpecError, match="item name 'a b' must be letters"):
        build_objectives({"a b": {"layer": {}}}, mnist_context(mnist))
    with pytest.raises(SpecError, match="a non-empty mapping"):
        build_objectives({}, mnist_context(mnist))
    job = {"model": "m", "layer": "conv2", "copies": 2, "objectives": {"a": {"layer": {}}}}
    with pytest.raises(ValueError, match="copies and diversity apply to `channels` jobs"):
        job_objectives(mnist, job)


def test_neuron_outside_the_grid_fails_at_the_first_step(mnist):
    objective = build_objective({"neuron": {"layer": "conv3", "channel": 0, "y": 9}}, mnist_context(mnist))
    pre = mnist.preprocess
    settings = RenderSettings(mean=pre.mean, std=pre.std, **MNIST_SETTINGS)
    with pytest.raises(SpecError, match="position \\(y=9, x=None\\) is outside the 7 x 7 grid of layer 'conv3'"):
        render(mnist.module, objective, [0], settings)


# --- the schema and the documented examples ---------------------------------------------


def schema() -> dict:
    return yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def default_config() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def docs_jobs() -> dict:
    """The render jobs of every YAML block in docs/render.md that has objectives."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs/render.md").read_text(), flags=re.S)
    jobs = {}
    for block in blocks:
        fragment = yaml.safe_load(block)
        if "objectives" in block:
            jobs.update(fragment["render"]["jobs"])
    return jobs


def test_docs_examples_use_every_kind_and_validate_against_the_schema():
    jobs = docs_jobs()
    text = yaml.safe_dump(jobs)
    for kind in ("neuron", "channel", "layer", "class_logit", "class_probability", "direction", "sum", "negate"):
        assert f"{kind}:" in text
    assert "classes:" in text and "vector:" in text and "weight:" in text
    config = default_config()
    config["render"]["jobs"] = jobs
    jsonschema.Draft202012Validator(schema()).validate(config)


def test_docs_examples_build_on_the_default_models(mnist, effnet_model, tmp_path):
    """Every documented spec builds; class directions read layers the default config analyses."""
    from featvis.vision.data import _photo_sources

    config = default_config()
    labels = sorted(_photo_sources()) + [str(d) for d in range(10)]  # the bundled datasets' real labels
    models = {"efficientnet_lite0": effnet_model, "mnist_cnn": mnist}
    analysed = {(a["model"], a["dataset"], layer) for a in config["analyses"] for layer in a["layers"]}
    for name, job in docs_jobs().items():
        loaded = models[job["model"]]

        def features(dataset, layer, model=job["model"], loaded=loaded):
            assert (model, dataset, layer) in analysed
            width = SpecContext.for_model(loaded).width(layer, "probe")
            return write_features(tmp_path / model / dataset / layer, labels, width)

        built = job_objectives(loaded, job, features, where=f"render.jobs.{name}.objectives")
        assert list(built) == list(job["objectives"])


@pytest.mark.parametrize("bad", [
    {"channels": [1], "objectives": {"a": {"layer": {}}}},  # both
    {},  # neither
    {"objectives": {"a": {"chanel": {"channel": 1}}}},
    {"objectives": {"a": {"channel": {"channel": 1}, "layer": {}}}},
    {"objectives": {"a": {"direction": {"vector": "x.npy", "dataset": "photos"}}}},
    {"objectives": {"a": {"direction": {"classes": ["a", "b"]}}}},
    {"objectives": {"a/b": {"layer": {}}}},
    {"objectives": {}},
])
def test_schema_rejects_bad_objective_jobs(bad):
    config = default_config()
    config["render"]["jobs"] = {"job": {"model": "efficientnet_lite0", "layer": "_blocks.10", **bad}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema()).validate(config)


@pytest.mark.integration
def test_an_objective_job_runs_in_the_workflow(tmp_path):
    """Data -> features -> a render job whose direction reads those features, from a checkout root."""
    import json

    from workflow_helpers import checkout, snakemake, write_config

    root = checkout(tmp_path / "featvis")
    config = {
        "threads": 1,
        "datasets": {"photos": {"source": "bundled", "name": "photos", "n_crops": 24, "crop_px": 48}},
        "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 48}},
        "analyses": [{"model": "lite", "dataset": "photos", "layers": ["_blocks.4"]}],
        "render": {"defaults": {"size": 32, "steps": 2, "snapshots": [1, 2]}, "jobs": {"tour": {
            "model": "lite", "layer": "_blocks.4", "objectives": {  # items keep their order
                "espresso": {"class_logit": {"class": "espresso"}},
                "coffee_minus_cat": {"direction": {"classes": ["coffee", "chelsea"], "dataset": "photos"}},
                "mix": {"sum": [{"channel": {"channel": 3}}, {"weight": -0.5, "negate": {"layer": {}}}]},
            }}}},
    }
    run = snakemake(root, write_config(root / "objectives.yaml", config), "results/render/objectives/tour/grid.png")
    assert run.returncode == 0, run.stderr[-3000:]
    out = root / "results/render/objectives/tour"
    assert (out / "grid.png").stat().st_size > 0 and (out / "progress.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "renders").glob("*.png")) == [
        f"{name}{kind}.png" for name in ("coffee_minus_cat", "espresso", "mix") for kind in ("", ".transparency")]
    trace = json.loads((out / "renders/trace.json").read_text())
    assert [item["name"] for item in trace["items"]] == ["espresso", "coffee_minus_cat", "mix"]
    assert trace["objectives"]["espresso"] == "logit(_fc, 967)"
    assert (root / "results/features/lite/photos/_blocks.4/mean.npy").is_file()  # what the direction read

    config["render"]["jobs"]["tour"]["objectives"]["coffee_minus_cat"]["direction"]["layer"] = "_blocks.5"
    run = snakemake(root, write_config(root / "objectives.yaml", config), "-n")
    assert run.returncode != 0 and "add that layer to an analyses entry" in run.stdout + run.stderr
