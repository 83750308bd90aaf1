"""Every example in README.md and docs/*.md runs as a user types it, from the root of a
fresh checkout: config blocks headed `# <name>.yaml` are saved under that name, `snakemake`
command lines run (to the end where that is cheap on generated inputs, as a dry run
otherwise), `featvis` command lines run, config fragments are dry-run on top of the embedded default, Python runs."""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from workflow_helpers import ROOT, checkout, planned_rules, run, write_config

pytestmark = pytest.mark.integration

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
RUN_TO_END = {"my.yaml"}  # cheap on the generated inputs below; every other config is dry-run
SKIP_LINES = ("--profile profiles/slurm",)  # needs a cluster: .ci/slurm_smoke.sh runs it on a loopback one
NEEDS_WEIGHTS = {"config/paper.yaml"}  # real weights no CI machine has: without them the run must list them
# A protein model in the Hugging Face cache no CI machine has: without it the start check must say so, in one line.
NEEDS_PROTEIN_MODEL = {"config/examples/tp53.yaml": "featvis: attention.model 'facebook/esm2_t33_650M_UR50D'"}
DEMO_RULES = {"data", "train_model", "features_shard", "patches_figures", "neighbors", "embed_method",
              "attribution_cam", "render_layer", "render_figure", "attention_report"}


def blocks() -> list[tuple[str, int, str, str]]:
    """(doc, index, language, text) of every fenced block."""
    found = []
    for doc in DOCS:
        for i, match in enumerate(FENCE.finditer(doc.read_text())):
            lang, text = match.group(1), match.group(2)
            if not lang and text.lstrip().startswith("snakemake"):
                lang = "bash"
            found.append((doc.name, i, lang, text))
    return found


def config_name(text: str) -> str | None:
    first = text.splitlines()[0].strip()
    return first[2:].strip() if first.startswith("# ") and first.endswith(".yaml") else None


def commands(text: str) -> list[list[str]]:
    """`snakemake ...` command lines of a shell block (after any `&&`), comments dropped."""
    lines = []
    for line in text.splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#") or any(s in line for s in SKIP_LINES):
            continue
        part = line.split("&&")[-1].strip()
        if part.startswith(("snakemake", "featvis ")):
            lines.append(shlex.split(part))
    return lines


def featvis(root: Path, args: list[str]) -> subprocess.CompletedProcess:
    """The `featvis` command of the checkout at ``root``, as `pip install -e .` puts it on the path."""
    return subprocess.run([sys.executable, "-m", "featvis.cli", *args], cwd=root, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONPATH": str(root / "src")})


# --- generated inputs: what the examples' paths point at ----------------------------------------


def photo_crops(n: int, side: int, seed: int) -> list[np.ndarray]:
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(seed)
    crops = []
    for i in range(n):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
        crops.append(photo[top : top + side, left : left + side])
    return crops


def make_birds(root: Path) -> Path:
    """30 images in two classes, mixed sizes, plus an RGBA PNG whose design lives in the alpha
    channel, a greyscale PNG and a 5,000 x 3,000 px JPEG."""
    folder = root / "birds"
    for i, crop in enumerate(photo_crops(27, 150, seed=1)):
        path = folder / ("finch" if i % 2 else "robin") / f"{i:02d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(crop).resize((150 + 7 * i, 120 + 5 * i)).save(path, quality=90)
    yy, xx = np.mgrid[:200, :300]
    alpha = ((np.sin(xx / 9) * np.cos(yy / 13)) > 0).astype(np.uint8) * 255
    rgba = np.dstack([np.zeros((200, 300, 3), np.uint8), alpha])
    Image.fromarray(rgba, "RGBA").save(folder / "robin" / "alpha_design.png")
    Image.fromarray(photo_crops(1, 180, seed=2)[0]).convert("L").save(folder / "finch" / "grey.png")
    big = Image.fromarray(photo_crops(1, 300, seed=3)[0]).resize((5000, 3000), Image.Resampling.BILINEAR)
    big.save(folder / "robin" / "huge.jpg", quality=85)
    return folder


def make_inputs(root: Path) -> None:
    birds = make_birds(root)
    shutil.copytree(birds, root / "images")  # config/examples/own-images.yaml reads images/<class>/
    rows = ["path,label"] + [f"{p.relative_to(root)},{p.parent.name}" for p in sorted(birds.rglob("*.jpg"))[:12]]
    (root / "scans.csv").write_text("\n".join(rows) + "\n")
    import torchvision

    (root / "models").mkdir()  # README "Your own model": a fine-tuned ResNet-18 and a class from a script
    torch.save(torchvision.models.resnet18(weights=None, num_classes=5).state_dict(), root / "models/resnet18_birds.pt")
    (root / "my_net.py").write_text(MY_NET)
    subprocess.run([sys.executable, "my_net.py"], cwd=root, check=True)


MY_NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x):
        return self.head(self.conv2(self.conv1(x).relu()))


if __name__ == "__main__":  # training would go here
    torch.save(Net(), "models/net.pt")
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = checkout(tmp_path_factory.mktemp("docs") / "featvis")
    make_inputs(root)
    for _doc, _i, lang, text in blocks():
        if lang == "yaml" and config_name(text):
            (root / config_name(text)).write_text(text)
    return root


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    test_command = next(line for line in readme.splitlines() if "pytest" in line and line.startswith("python3"))
    assert test_command in (ROOT / ".ci/run").read_text()
    assert "snakemake --cores all" in readme


EXAMPLES = [b for b in blocks() if b[2] in ("bash", "python") or (b[2] == "yaml" and not config_name(b[3]))]


@pytest.mark.parametrize(("doc", "index", "lang", "text"), EXAMPLES, ids=[f"{b[0]}#{b[1]}" for b in EXAMPLES])
def test_example_runs(root, doc, index, lang, text):
    if lang == "python":
        done = subprocess.run([sys.executable, "-c", text], cwd=root, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return
    if lang == "yaml":  # a fragment: on top of the embedded default, dry-run
        config = copy.deepcopy(yaml.safe_load((root / "config/config.yaml").read_text()))
        config.update(yaml.safe_load(text))
        path = write_config(root / f"fragment_{doc}_{index}.yaml", config)
        done = run(root, "-n", "--cores", "2", "--configfile", str(path))
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        return
    for command in commands(text):
        if command[0] == "featvis":
            done = featvis(root, command[1:])
            assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
            continue
        config = command[command.index("--configfile") + 1] if "--configfile" in command else None
        args = command[1:] if config in RUN_TO_END else [*command[1:], "-n"]
        done = run(root, *args)
        if config in NEEDS_WEIGHTS and done.returncode:
            assert "models cannot be loaded" in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
            continue
        if config in NEEDS_PROTEIN_MODEL and done.returncode:
            assert NEEDS_PROTEIN_MODEL[config] in done.stderr and "Traceback" not in done.stderr, done.stderr[-3000:]
            continue
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        if config is None and not any("/" in arg for arg in args):  # the default's `rule all`: the full demo
            assert DEMO_RULES <= planned_rules(done), planned_rules(done)


def test_own_images_example_ran_to_the_end_and_did_only_that(root):
    done = run(root, "--cores", "2", "--configfile", "my.yaml")  # as the README says (or already done)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    results = root / "results"
    made = {p.relative_to(results).parts[0] for p in results.rglob("*") if p.is_file()}
    assert "render" not in made and "attention" not in made
    assert {p.name for p in (results / "data").iterdir()} == {"birds"}  # no bundled data, no training
    assert {p.name for p in (results / "models").iterdir()} == {"efficientnet_lite0"}
    quality = (results / "data/birds/quality.csv").read_text()
    assert "alpha_design.png" in quality and "huge.jpg" in quality
    for stage in ("patches", "neighbors", "embed"):
        assert any((results / stage / "efficientnet_lite0/birds/_blocks.10").glob("*.png")), stage
    assert (results / "attribution/efficientnet_lite0/birds/class_maps.png").stat().st_size > 0


def path_rows() -> list[tuple[str, str]]:
    """(what, command) of each row of the README's "Choose your path" table."""
    section = (ROOT / "README.md").read_text().split("## Choose your path", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [(cells[0].strip(), cells[-1].strip().strip("`")) for cells in rows]


def stand_in_esm2(hub_cache: Path, name: str) -> None:
    """A tiny random ESM-2 saved where `hf download <name>` puts the real one (the Hugging Face hub cache)."""
    import transformers

    config = transformers.EsmConfig(
        vocab_size=33, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=1026, position_embedding_type="rotary", pad_token_id=1, mask_token_id=32,
        token_dropout=True, emb_layer_norm_before=False,
    )
    torch.manual_seed(0)
    repo = hub_cache / f"models--{name.replace('/', '--')}"
    transformers.EsmForMaskedLM(config).save_pretrained(repo / "snapshots" / "stand-in")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("stand-in")


@pytest.mark.parametrize(("what", "command"), path_rows(), ids=[r[0][:30] for r in path_rows()])
def test_choose_your_path_row_plans(root, what, command, tmp_path, monkeypatch):
    """Each row's command, as written, plans its jobs (the cluster rows: .ci/slurm_smoke.sh); the protein row
    with a stand-in ESM-2 in the Hugging Face cache."""
    for words in commands(command):
        config = words[words.index("--configfile") + 1] if "--configfile" in words else None
        if config in NEEDS_WEIGHTS:
            continue  # test_example_runs: without weights, the one message naming every file
        if config in NEEDS_PROTEIN_MODEL:
            stand_in_esm2(tmp_path / "hub", yaml.safe_load((root / config).read_text())["attention"]["model"])
            monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        done = run(root, *words[1:], "-n")
        assert done.returncode == 0, (what, (done.stdout + done.stderr)[-3000:])
