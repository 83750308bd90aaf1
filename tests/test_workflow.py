"""The real workflow on a tiny config: outputs, no-op reruns, byte-identical reruns, and
reruns limited to what a changed parameter touches."""

from __future__ import annotations

import copy
import json
import re
import zipfile

import numpy as np
import pytest
import yaml

from featvis.core.io import sha256_file
from workflow_helpers import TINY_CONFIG, planned_rule_names, planned_rules, snakemake, write_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run


def outputs(workdir):
    return sorted(p for p in (workdir / "results").rglob("*") if p.is_file())


def test_default_targets_exist(run):
    workdir, _ = run
    results = workdir / "results"
    for model in ("efficientnet_lite0", "mnist_cnn"):
        assert (results / "weights" / model / "filters.png").stat().st_size > 1000
        assert "rf_size" in (results / "models" / model / "layers.tsv").read_text()
    meta = json.loads((results / "features/efficientnet_lite0/photos/_blocks.4/meta.json").read_text())
    assert meta["n_images"] == 36 and meta["layer"] == "_blocks.4" and len(meta["dataset_hash"]) == 64
    maxima = np.load(results / "features/efficientnet_lite0/photos/_blocks.4/max.npy", mmap_mode="r")
    assert maxima.shape == (36, meta["channels"])
    accuracy = json.loads((results / "models/mnist_cnn/training.json").read_text())["test_accuracy"]
    assert accuracy > 0.5  # one epoch on 4,000 digits; chance is 0.1


def test_second_run_has_nothing_to_do(run):
    workdir, config = run
    result = snakemake(workdir, config, "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_plotting_parameter_reruns_only_plots(run, tmp_path):
    workdir, _ = run
    changed = copy.deepcopy(TINY_CONFIG)
    changed["figures"]["dpi"] = 72
    result = snakemake(workdir, write_config(tmp_path / "dpi.yaml", changed), "-n")
    assert result.returncode == 0
    planned = planned_rules(result)
    assert "filters" in planned
    compute = {"data", "train_model", "layer_table", "features_shard", "features_merge", "patches_shard",
               "patches_merge", "embed_method", "attention_compute"}
    assert not planned & compute, planned


def test_adding_an_embedding_method_makes_only_its_outputs(run, tmp_path):
    workdir, _ = run
    changed = copy.deepcopy(TINY_CONFIG)
    changed["embed"]["methods"] = ["pca", "tsne", "umap"]
    result = snakemake(workdir, write_config(tmp_path / "umap.yaml", changed), "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_rules(result) == {"embed_method", "embed_figures", "gallery_layer", "all"}
    methods = re.findall(r"method=(\w+)", result.stdout + result.stderr)
    assert methods and set(methods) == {"umap"}
    # one UMAP job per (model, dataset), for all its embed layers
    assert {n for n in planned_rule_names(result) if n.startswith("embed_method")} == {
        "embed_method__efficientnet_lite0__photos", "embed_method__mnist_cnn__mnist5k"}
    # the gallery rebuilds the layer pages of the models whose figures changed (one job per model), no other page
    gallery = {n for n in planned_rule_names(result) if n.startswith("gallery")}
    assert gallery == {"gallery_layer__efficientnet_lite0", "gallery_layer__mnist_cnn"}, gallery


def test_short_per_layer_stages_run_one_job_per_model_and_dataset(run):
    workdir, config = run
    result = snakemake(workdir, config, "-n", "--forceall")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = re.findall(r"^rule (\w+):", result.stdout + result.stderr, flags=re.M)
    pairs = ["efficientnet_lite0__photos", "mnist_cnn__mnist5k"]
    for stage in ("features_merge", "patches_merge", "patches_figures", "neighbors", "embed_figures",
                  "attribution_deconv"):
        assert sorted(j for j in jobs if j.split("__")[0] == stage) == [f"{stage}__{pair}" for pair in pairs], stage
    # embed: a job per method (pca, tsne), each for every embed layer of its (model, dataset)
    assert sorted(j for j in jobs if j.startswith("embed_method")) == sorted(
        f"embed_method__{pair}" for pair in pairs for _ in range(2))
    assert sorted(j for j in jobs if j.startswith("gallery_layer")) == [
        "gallery_layer__efficientnet_lite0", "gallery_layer__mnist_cnn"]


def test_resolved_config_is_written_next_to_the_results(run):
    workdir, _ = run
    resolved = yaml.safe_load((workdir / "results/config.resolved.yaml").read_text())
    assert resolved["features"]["shards"] == 2 and resolved["patches"]["negative"] is False  # a default, filled
    assert resolved["analyses"][0]["views"]["embed"] == ["_blocks.4"]


def test_report(run, tmp_path):
    workdir, config = run
    report = tmp_path / "report.zip"
    result = snakemake(workdir, config, "--report", str(report))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    with zipfile.ZipFile(report) as archive:
        names = archive.namelist()
        page = next(n for n in names if n.endswith("report.html"))
        html = archive.read(page).decode()
        assert "First-layer filters" in html and "results/gallery/index.html" in html  # the report links to the gallery
    assert any(n.endswith("filters.png") for n in names) and any(n.endswith("index.html") for n in names)


def test_forceall_rewrites_identical_bytes(run):
    workdir, config = run
    before = {p: (sha256_file(p), p.stat().st_mtime_ns) for p in outputs(workdir)}
    result = snakemake(workdir, config, "--forceall")
    assert result.returncode == 0, result.stderr[-4000:]
    after = {p: (sha256_file(p), p.stat().st_mtime_ns) for p in outputs(workdir)}
    assert after.keys() == before.keys()
    figures = [p for p in before if p.suffix == ".png" and "data" not in p.parts]
    assert figures and all(after[p][1] != before[p][1] for p in figures)  # really rewritten
    changed = [str(p) for p in before if after[p][0] != before[p][0]]
    assert changed == []


def test_rendered_units_are_accentuated_and_renders_have_transparency_maps(run):
    """The render job's units (b4: _blocks.4 channels 0 and 1) get their top 3 images accentuated on the
    analysed dataset: the activation before is the patches stage's own top value (same image, same
    position), it rises, and the gallery page shows the pairs and the render's transparency toggle."""
    workdir, _ = run
    results = workdir / "results"
    table = json.loads((results / "accentuate/efficientnet_lite0/photos/_blocks.4/accentuate.json").read_text())
    topk = np.load(results / "patches/efficientnet_lite0/photos/_blocks.4/top_max.npz")
    assert [(i["channel"], i["rank"]) for i in table["items"]] == [(c, r) for c in (0, 1) for r in range(3)]
    for item in table["items"]:
        np.testing.assert_allclose(item["before"], topk["value"][item["channel"], item["rank"]], rtol=1e-4, atol=1e-5)
        assert item["after"] > item["before"] and 0 < item["distance"] < 0.2
    units = results / "units/efficientnet_lite0/_blocks.4"
    assert sorted(p.name for p in (units / "accentuate/photos").glob("0001.*.png")) == [
        f"0001.{kind}{r}.png" for kind in ("accent", "seed") for r in range(3)]
    assert (units / "render/b4/0000.copy0.transparency.png").is_file()
    page = (results / "gallery/efficientnet_lite0/_blocks.4/1.html").read_text()
    assert "Feature accentuation" in page and "img/accentuate.photos.0001.accent2.png" in page
    assert 'class="alpha-switch"' in page


def test_trust_stage_checks_every_rendered_unit_and_the_unit_page_shows_it(run):
    """One trust job per channel render job (b4 renders channels 0 and 1 of _blocks.4, an analysed
    layer): a layer record with every number, one record per unit, and the panel on the unit page."""
    workdir, _ = run
    results = workdir / "results"
    record = json.loads((results / "trust/efficientnet_lite0/_blocks.4/b4.json").read_text())
    assert record["dataset"] == "photos" and record["reference"] == "bottom" and record["k"] == 8
    assert record["probe_layers"][-1] == "_blocks.4" and record["threshold"] == 0.5
    assert [u["channel"] for u in record["units"]] == [0, 1] and record["seeds_per_unit"] == 3
    maxima = np.load(results / "features/efficientnet_lite0/photos/_blocks.4/max.npy")
    for unit in record["units"]:
        assert unit["top_images"] == list(np.argsort(-maxima[:, unit["channel"]], kind="stable")[:8])
        (check,) = unit["checks"]
        assert check["status"] in ("ok", "no_natural_gap") and len(check["layers"]) == len(record["probe_layers"])
        assert len(unit["seed_stability"]["seeds"]) == 3
    units = sorted(p.name for p in (results / "units/efficientnet_lite0/_blocks.4/trust/b4").glob("*.json"))
    assert units == ["0000.trust.json", "0001.trust.json"]
    page = (results / "gallery/efficientnet_lite0/_blocks.4/1.html").read_text()
    assert "Can this render be trusted?" in page and "Seed stability" in page and "ICML 2024" in page
    layer = (results / "gallery/efficientnet_lite0/_blocks.4/index.html").read_text()
    assert 'value="score"' in layer and 'data-score="' in layer
