"""The render stage's rules end to end on a tiny config, and its schema."""

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from PIL import Image

from featvis.core.io import sha256_file
from workflow_helpers import checkout, snakemake, write_config

REPO = Path(__file__).resolve().parents[2]


def merged_schema() -> dict:
    return yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def default_config() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_default_config_validates_against_the_schema():
    jsonschema.Draft202012Validator(merged_schema()).validate(default_config())


def test_schema_rejects_bad_render_settings():
    validator = jsonschema.Draft202012Validator(merged_schema())
    for bad in ({"steps": 0}, {"param": "cppn"}, {"transforms": "fancy"}):
        config = default_config()
        config["render"]["jobs"]["blocks10"].update(bad)
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(config)


@pytest.mark.integration
def test_render_only_config_runs_only_render_jobs(tmp_path):
    root = checkout(tmp_path / "featvis")
    render = default_config()["render"]
    render["defaults"].update({"size": 32, "steps": 2, "snapshots": [1, 2]})
    render["jobs"] = {"tiny": {"model": "lite", "layer": "_blocks.3", "channels": [0, 1], "copies": 2,
                               "diversity": 1.0}}
    for kind in ("addition", "interpolation", "regularization"):
        for job in render["figures"][kind].values():
            job.update(model="lite", layer="_blocks.3", **({"frames": 3} if kind == "interpolation" else {}))
    config = {"models": {"lite": {"architecture": "efficientnet_lite0"}}, "render": render}
    path = write_config(root / "render.yaml", config)
    run = snakemake(root, path)
    assert run.returncode == 0, run.stderr[-3000:]
    results = root / "results"
    assert (results / "render/lite/_blocks.3/tiny/grid.png").stat().st_size > 0  # keyed by model and layer
    trace = json.loads((results / "render/lite/_blocks.3/tiny/renders/trace.json").read_text())
    assert [i["name"] for i in trace["items"]][:2] == ["channel0000_copy0", "channel0000_copy1"]
    units = results / "units/lite/_blocks.3/render/tiny"  # the one unit key: (model, layer, channel)
    assert sorted(p.name for p in units.glob("*.copy?.png")) == [f"000{c}.copy{k}.png" for c in (0, 1) for k in (0, 1)]
    alpha = np.asarray(Image.open(units / "0001.copy1.transparency.png"))  # the transparency map beside it
    assert alpha.shape == (32, 32) and alpha.max() == 255 and alpha.min() < 255
    assert json.loads((units / "0001.copy1.json").read_text())["channel"] == 1
    assert (results / "gallery/lite/_blocks.3/1.html").is_file()  # a render-only layer gets unit pages
    for kind in ("addition", "interpolation", "regularization"):
        assert (results / f"render/figures/{kind}/blocks10.png").stat().st_size > 0
    made = {p.relative_to(results).parts[0] for p in results.rglob("*") if p.is_file()}
    allowed = {"render", "trust", "units", "gallery", "models", "weights", "config.resolved.yaml", ".gitkeep"}
    # (trust: seed stability of the rendered units; no path check without a features stage)
    assert made <= allowed, made  # nothing else ran


@pytest.mark.integration
def test_render_defaults_steps_change_the_renders(tmp_path):
    """`render.defaults.steps` reaches the job (a schema default used to win) and changes its output."""
    root = checkout(tmp_path / "featvis")
    base = {"size": 32, "snapshots": [1], "transforms": "none"}
    job = {"model": "lite", "layer": "_blocks.3", "channels": [0]}
    hashes = []
    for steps in (2, 5):
        config = {"models": {"lite": {"architecture": "efficientnet_lite0"}},
                  "render": {"defaults": {**base, "steps": steps}, "jobs": {"tiny": job}}}
        run = snakemake(root, write_config(root / "render.yaml", config))
        assert run.returncode == 0, run.stderr[-3000:]
        trace = json.loads((root / "results/render/lite/_blocks.3/tiny/renders/trace.json").read_text())
        assert len(trace["items"][0]["objective"]) == steps
        hashes.append(sha256_file(root / "results/render/lite/_blocks.3/tiny/grid.png"))
    assert hashes[0] != hashes[1]
