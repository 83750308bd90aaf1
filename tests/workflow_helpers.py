"""Run the real workflow as a user does: from the root of a fresh copy of this checkout,
`snakemake --cores 2 --configfile <file>`, with no --snakefile or --directory."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

TINY_CONFIG = {
    "seed": 0,
    "threads": 1,
    "datasets": {
        "photos": {"source": "bundled", "name": "photos", "n_crops": 36, "crop_px": 48},
        "mnist5k": {"source": "bundled", "name": "mnist5k"},
    },
    "models": {
        "efficientnet_lite0": {"architecture": "efficientnet_lite0", "image_size": 48},
        "mnist_cnn": {
            "architecture": "mnist_cnn",
            "train": {"dataset": "mnist5k", "epochs": 1, "batch_size": 32, "learning_rate": 0.003},
        },
    },
    "analyses": [
        {"model": "efficientnet_lite0", "dataset": "photos", "layers": ["_blocks.1", "_blocks.4"]},
        {"model": "mnist_cnn", "dataset": "mnist5k", "layers": ["conv2", "fc"]},
    ],
    "features": {"batch_size": 16, "shards": 2},
    "figures": {"dpi": 60},
    # the dataset views, kept small: one layer each where a stage allows choosing
    "patches": {"k": 4, "grid_channels": 4},
    "neighbors": {"k": 3, "n_queries": 2, "layers": {"efficientnet_lite0": ["_blocks.4"], "mnist_cnn": ["fc"]}},
    "embed": {"methods": ["pca", "tsne"], "perplexity": 5, "atlas_grid": 6,
              "layers": {"efficientnet_lite0": ["_blocks.4"], "mnist_cnn": ["conv2"]}},
    "attribution": {"channels": 2, "n_images": 2,
                    "layers": {"efficientnet_lite0": ["_blocks.4"], "mnist_cnn": ["conv2"]},
                    "cam_layers": {"efficientnet_lite0": ["_blocks.4"], "mnist_cnn": ["conv2"]}},
    "render": {"jobs": {"b4": {"model": "efficientnet_lite0", "layer": "_blocks.4", "channels": [0, 1],
                               "size": 32, "steps": 4, "snapshots": [1, 4]}}},
    "concepts": {"layers": {"efficientnet_lite0": ["_blocks.4"]}, "n_concepts": 6, "steps": 30, "relu": True,
                 "positions_per_image": 4, "top_k": 4, "heatmap_images": 2, "render_steps": 2, "render_size": 32},
    "attention": {  # a random ESM-2 on a short sequence: the stage runs, in seconds
        "variants": str(ROOT / "tests" / "data" / "tiny_variants.tsv"),
        "model": "random:esm2_t6_8M_UR50D",
        "logo_window": 2,
    },
}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def checkout(dest: Path) -> Path:
    """A copy of this working tree (tracked and not-ignored files), standing in for a fresh clone."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    for name in filter(None, listing.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def snakemake_command() -> list[str]:
    """`snakemake` from this interpreter's environment, as a user's shell finds it."""
    script = Path(sys.executable).parent / "snakemake"
    return [str(script)] if script.exists() else [sys.executable, "-m", "snakemake"]


def run(root: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """A command line typed at the root of a checkout."""
    return subprocess.run([*snakemake_command(), *args], cwd=root, capture_output=True, text=True, timeout=timeout)


def snakemake(root: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    """`snakemake --cores 2 [args] --configfile <config>` (last: --configfile takes several files)."""
    return run(root, "--cores", "2", *args, "--configfile", str(config))


def planned_rule_names(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the jobs a (dry) run lists, as Snakemake names them."""
    return set(re.findall(r"^(?:local)?rule (\w+):", result.stdout + result.stderr, flags=re.M))


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    """The stages of the jobs a (dry) run lists: a per-(model, dataset) rule such as
    features_merge__lite__photos (workflow/rules/common.smk, stage_rule) counts as features_merge."""
    return {name.split("__")[0] for name in planned_rule_names(result)}
