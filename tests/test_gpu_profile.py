"""GPUs on one machine: the rules that put tensors on the device declare a `gpu` resource when the
device is cuda, so the workstation profile's `--resources gpu=1` runs one of them at a time;
CPU-only rules declare none, and a CPU config declares none at all."""

from __future__ import annotations

import re

import pytest

from workflow_helpers import TINY_CONFIG, checkout, run, write_config

pytestmark = pytest.mark.integration

DEVICE_RULES = {"features_shard", "patches_shard", "train_model", "render_layer", "attribution_deconv",
                "attribution_cam", "attention_compute", "accentuate_layer", "trust_layer", "concepts_fit",
                "concepts_encode", "concepts_pages"}


def gpu_per_rule(output: str) -> dict[str, int]:
    """{rule: gpu} from a dry run's job listing (rules of one (model, dataset) share their stage's name)."""
    found = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        name = re.match(r"(?:local)?rule (\w+):", block)
        if name:
            gpu = re.search(r"\bgpu=(\d+)", block)
            found[name.group(1).split("__")[0]] = max(found.get(name.group(1).split("__")[0], 0),
                                                      int(gpu.group(1)) if gpu else 0)
    return found


def test_workstation_profile_counts_only_device_rules(tmp_path):
    root = checkout(tmp_path / "featvis")
    tiny = {**TINY_CONFIG, "patches": {**TINY_CONFIG["patches"], "source": "images"}}  # the miner's shards too
    config = write_config(root / "tiny.yaml", tiny)
    gpu = run(root, "-n", "--profile", "profiles/workstation-gpu", "--configfile", str(config))
    assert gpu.returncode == 0, gpu.stderr[-3000:]
    rules = gpu_per_rule(gpu.stdout + gpu.stderr)
    assert {r for r, n in rules.items() if n == 1} == DEVICE_RULES, rules
    assert rules["data"] == 0 and rules["embed_method"] == 0 and rules["gallery_index"] == 0
    cpu = run(root, "-n", "--cores", "2", "--configfile", str(config))  # device auto: no gpu resource
    assert cpu.returncode == 0 and not any(gpu_per_rule(cpu.stdout + cpu.stderr).values())
