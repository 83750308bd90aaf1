"""The render stage's rules end to end on a tiny config, and its schema."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

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
def test_render_rules_run_end_to_end(tmp_path):
    config = default_config()
    config["analyses"] = []
    tiny = {"size": 32, "steps": 2, "snapshots": [1, 2]}
    config["render"]["defaults"].update(tiny)
    config["render"]["jobs"] = {"tiny": {"model": "efficientnet_lite0", "layer": "_blocks.3", "channels": [0, 1],
                                         "copies": 2, "diversity": 1.0}}
    for kind in ("addition", "interpolation", "regularization"):
        for job in config["render"]["figures"][kind].values():
            job.update(layer="_blocks.3", frames=3) if kind == "interpolation" else job.update(layer="_blocks.3")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        f'configfile: "config.yaml"\n'
        f'include: "{REPO}/workflow/rules/common.smk"\n'
        f'include: "{REPO}/workflow/rules/render.smk"\n'
        "rule all:\n    input: render_targets()\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--quiet"], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    results = tmp_path / "results/render"
    assert (results / "tiny/grid.png").stat().st_size > 0
    trace = json.loads((results / "tiny/renders/trace.json").read_text())
    assert [i["name"] for i in trace["items"]][:2] == ["channel0000_copy0", "channel0000_copy1"]
    for kind in ("addition", "interpolation", "regularization"):
        assert (results / f"figures/{kind}/blocks10.png").stat().st_size > 0
