"""The `featvis` command: layers (no run needed), check (the workflow's start checks), init (a
starter config that the workflow plans in full)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from PIL import Image

from featvis.cli import main
from workflow_helpers import ROOT, checkout, planned_rule_names, snakemake, write_config


def featvis(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """`featvis ...` as a shell runs it, on this checkout's (or `cwd`'s) source."""
    src = (cwd or ROOT) / "src"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "featvis.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def rows(text: str) -> dict[str, list[str]]:
    """Layer name -> the other cells of `featvis layers` output."""
    return {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:]}


@pytest.mark.parametrize("command", ["layers", "init", "check"])
def test_every_command_has_help_and_the_command_starts_without_torch(command):
    result = featvis(command, "--help")
    assert result.returncode == 0 and f"usage: featvis {command}" in result.stdout
    probe = subprocess.run([sys.executable, "-c", "import sys, featvis.cli as c; c.build_parser(); "
                            "print(sorted(m for m in ('torch', 'pandas', 'yaml') if m in sys.modules))"],
                           env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    assert probe.stdout.strip() == "[]", probe.stderr


def test_layers_of_an_architecture_with_no_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["layers", "mnist_cnn"]) == 0
    table = rows(capsys.readouterr().out)
    # known answers: conv1 5x5; pool1 2/2 -> 6, step 2; conv2 5x5 at step 2 -> 6 + 4 * 2 = 14
    assert table["conv1"] == ["Conv2d", "16x28x28", "5x5", "1x1", "exact"]
    assert table["conv2"] == ["Conv2d", "32x14x14", "14x14", "2x2", "exact"]
    assert table["fc"][:3] == ["Linear", "10", "global"]
    assert list(table)[:3] == ["conv1", "relu1", "pool1"]  # in the order they run
    assert not (tmp_path / "results").exists()


def test_layers_of_a_config_model_at_another_size(tmp_path, capsys):
    config = write_config(tmp_path / "c.yaml", {"models": {"digits": {"architecture": "mnist_cnn", "num_classes": 4,
                                                                      "train": {"dataset": "d"}}}})
    assert main(["layers", "digits", "--config", str(config), "--image-size", "32"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["conv1"][1] == "16x32x32" and table["fc"][1] == "4"
    assert main(["layers", "lite", "--config", str(config)]) == 1
    assert "no model 'lite' in its models: section (known: digits)" in capsys.readouterr().err


def test_layers_tsv_has_every_column_of_layers_tsv(capsys):
    assert main(["layers", "mnist_cnn", "--tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t") == ["layer", "type", "output_shape", "rf_size", "rf_stride", "rf_offset", "rf_kind",
                                     "rf_note", "token_grid"]
    assert lines[1].split("\t")[:7] == ["conv1", "Conv2d", "16x28x28", "5x5", "1x1", "-2x-2", "exact"]


def test_layers_of_an_unknown_architecture_says_so_in_one_line(capsys):
    assert main(["layers", "resnet181"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("featvis: model resnet181: unknown model architecture 'resnet181' (closest: resnet18")
    assert len(err.strip().splitlines()) == 1


def check(tmp_path, monkeypatch, capsys, config: dict) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)
    code = main(["check", str(write_config(tmp_path / "c.yaml", config))])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_passes_a_good_config_and_touches_no_results(tmp_path, monkeypatch, capsys, image_folder):
    config = {"datasets": {"mine": {"source": "folder", "path": str(image_folder)}},
              "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
              "analyses": [{"model": "lite", "dataset": "mine", "layers": ["_blocks.1"]}]}
    code, out, err = check(tmp_path, monkeypatch, capsys, config)
    assert code == 0, err
    assert "the start checks pass (1 models, 1 analyses, 1 layers, 0 render jobs)" in out
    assert not (tmp_path / "results").exists()


def test_check_refuses_an_unknown_layer_and_points_to_featvis_layers(tmp_path, monkeypatch, capsys, image_folder):
    config = {"datasets": {"mine": {"source": "folder", "path": str(image_folder)}},
              "models": {"lite": {"architecture": "efficientnet_lite0", "image_size": 32}},
              "analyses": [{"model": "lite", "dataset": "mine", "layers": ["_blocks.99"]}]}
    code, _, err = check(tmp_path, monkeypatch, capsys, config)
    assert code == 1
    assert err.startswith("featvis: analyses[0].layers: unknown layer '_blocks.99'")
    assert "`featvis layers lite --config <this config>` lists them all" in err


def test_a_config_that_plans_nothing_says_what_it_needs(tmp_path, monkeypatch, capsys):
    code, _, err = check(tmp_path, monkeypatch, capsys, {"device": "cuda"})
    assert code == 1
    assert "this config plans no analysis" in err
    assert "models:    {efficientnet_lite0: {architecture: efficientnet_lite0}}" in err
    assert "featvis init <image folder>" in err


def test_analyses_without_a_models_section_show_the_lines_to_add(tmp_path, monkeypatch, capsys, image_folder):
    config = {"datasets": {"mine": {"source": "folder", "path": str(image_folder)}},
              "analyses": [{"model": "efficientnet_lite0", "dataset": "mine", "layers": ["_blocks.1"]}]}
    code, _, err = check(tmp_path, monkeypatch, capsys, config)
    assert code == 1
    assert "analyses[0].model: 'efficientnet_lite0' names a model, but the config declares no models; add" in err
    added = yaml.safe_load(err.split("; add\n", 1)[1])  # the two lines, pasted as they are, are valid config
    assert added == {"models": {"efficientnet_lite0": {"architecture": "efficientnet_lite0"}}}


def test_check_of_a_missing_or_broken_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "none.yaml")]) == 1
    assert "cannot read config" in capsys.readouterr().err
    (tmp_path / "bad.yaml").write_text("models: [\n")
    assert main(["check", str(tmp_path / "bad.yaml")]) == 1
    assert "is not valid YAML" in capsys.readouterr().err


@pytest.mark.integration
def test_init_writes_a_config_the_workflow_plans_in_full(tmp_path, image_folder):
    root = checkout(tmp_path / "featvis")
    result = featvis("init", str(image_folder), "--image-size", "32", "--out", "mine.yaml", cwd=root)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load((root / "mine.yaml").read_text())
    # a middle and the deepest spatial block: at 32 px, _blocks.11 on are 1x1
    assert config["analyses"][0]["layers"] == ["_blocks.5", "_blocks.10"]
    assert config["render"]["jobs"]["starter"]["layer"] == "_blocks.10"
    again = featvis("init", str(image_folder), "--out", "mine.yaml", cwd=root)
    assert again.returncode == 1 and "mine.yaml exists; pass --force" in again.stderr
    plan = snakemake(root, root / "mine.yaml", "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    stages = {"features_merge", "patches_figures", "neighbors", "embed_figures", "attribution_cam", "render_layer",
              "gallery_index"}
    planned = {name.split("__")[0] for name in planned_rule_names(plan)}
    assert stages <= planned, stages - planned


def test_init_lists_loose_images_as_one_class_and_refuses_an_empty_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "shots").mkdir()
    for i, colour in enumerate([(200, 0, 0), (0, 0, 200), (0, 200, 0)]):
        Image.new("RGB", (40, 30), colour).save(tmp_path / "shots" / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    assert main(["init", "shots", "--image-size", "32", "--out", "shots.yaml"]) == 0
    assert "wrote shots.yaml and shots_images.csv" in capsys.readouterr().out
    config = yaml.safe_load((tmp_path / "shots.yaml").read_text())
    assert config["datasets"] == {"shots": {"source": "csv", "path": "shots_images.csv"}}
    rows = (tmp_path / "shots_images.csv").read_text().splitlines()
    assert rows == ["path,label", *(f"{tmp_path / 'shots' / f'{i}.png'},shots" for i in range(3))]
    (tmp_path / "empty").mkdir()
    assert main(["init", "empty"]) == 1
    err = capsys.readouterr().err
    assert "datasets.empty: dataset empty has no images in class sub-folders" in err
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "config_images.csv").exists()
