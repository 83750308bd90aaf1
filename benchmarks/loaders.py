"""Loader workers vs none: images/s of the features stage and how busy the model is.

Two cases of the default config, each with `features.workers` 0, 1 and 2:
- photos: EfficientNet-Lite0 at 160 px on the bundled photos (1,200 crops of 160 px), the
  default run's four layers, batch 64: the model dominates, decoding is a few percent;
- mnist: the pipeline's small MNIST CNN (random weights: the time is the same) on the
  5,000 bundled 28 px digits, layers conv2 and fc, batch 64: decoding dominates.
Each setting runs :func:`extract_shard` end to end from the image files with 2 compute
threads, interleaved over rounds (best wall time of each); "busy" is the time in the
model's forward passes over the whole loop (waiting for batches included), as the features
shard log reports it. Every setting's features are checked to be byte-identical.
Run: `PYTHONPATH=src python benchmarks/loaders.py [rounds] [photos|mnist|all]`. Keeps each
case's numbers in benchmarks/results/loaders.json and writes benchmarks/results/loaders.md.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import torch

from featvis.core.device import make_deterministic
from featvis.vision.data import build_mnist5k, build_photos
from featvis.vision.features import LoopTime, extract_shard
from featvis.vision.models import load_model

CASES = {
    "photos": {"spec": {"architecture": "efficientnet_lite0", "image_size": 160},
               "layers": ["_blocks.1", "_blocks.4", "_blocks.10", "_conv_head"],
               "images": lambda out: build_photos(out, n_crops=1200, crop_px=160),
               "what": "EfficientNet-Lite0 at 160 px, bundled photos (1,200 PNG crops of 160 px), "
                       "layers _blocks.1, _blocks.4, _blocks.10, _conv_head"},
    "mnist": {"spec": {"architecture": "mnist_cnn", "allow_random": True},
              "layers": ["conv2", "fc"],
              "images": build_mnist5k,
              "what": "the MNIST CNN (random weights) on mnist5k (5,000 PNG digits of 28 px), layers conv2, fc"},
}
BATCH, THREADS, WORKERS = 64, 2, (0, 1, 2)
RESULTS = Path(__file__).parent / "results"


def measure(case: dict, rounds: int) -> dict:
    make_deterministic(0, THREADS)
    model = load_model(case["spec"], "model")
    with tempfile.TemporaryDirectory() as tmp:
        paths = case["images"](Path(tmp) / "images")["path"].tolist()
        extract_shard(model, paths[:BATCH], case["layers"], torch.device("cpu"), BATCH, progress=False)  # warm-up
        best: dict[int, LoopTime] = {}
        reference = None
        for _ in range(rounds):
            for workers in WORKERS:
                timing = LoopTime()
                result = extract_shard(model, paths, case["layers"], torch.device("cpu"), BATCH, progress=False,
                                       workers=workers, timing=timing)
                flat = {(layer, stat): a.tobytes() for layer, stats in result.items() for stat, a in stats.items()}
                reference = reference or flat
                assert flat == reference, f"workers={workers} changed the features"
                if workers not in best or timing.wall_s < best[workers].wall_s:
                    best[workers] = timing
                print(timing.summary(f"workers {workers}"), flush=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return {"rounds": rounds, "load": load,
            "rows": [[w, t.images, t.wall_s, t.forward_s] for w, t in sorted(best.items())]}


def table(name: str, result: dict) -> str:
    rows = "\n".join(f"| {w} | {wall:.2f} | {n / wall:.1f} | {forward:.2f} | **{100 * forward / wall:.1f}%** |"
                     for w, n, wall, forward in result["rows"])
    return f"""## {name}: {CASES[name]["what"]}

Best of {result["rounds"]} interleaved rounds; load average at the end: {result["load"]} (2 cores).

| `features.workers` | loop wall (s) | images/s | forward passes (s) | busy (forward / wall) |
|---:|---:|---:|---:|---:|
{rows}
"""


def write(results: dict) -> None:
    (RESULTS / "loaders.json").write_text(json.dumps(results, indent=1) + "\n")
    sections = "\n".join(table(name, results[name]) for name in CASES if name in results)
    (RESULTS / "loaders.md").write_text(f"""# Loader workers: is the model kept busy?

`python benchmarks/loaders.py`: `extract_shard` end to end from the image files, batch {BATCH},
{THREADS} compute threads, with `features.workers` = {", ".join(map(str, WORKERS))}. The features are
byte-identical for every setting (checked in the run). Busy = time inside the model's forward
passes over the whole extract loop (waiting for the next batch, per-layer reductions and the
forward passes), the number the features shard log reports.

**Shared machine:** these 2 cores were shared with other engineers' jobs (tests, benchmarks,
workflow runs) while this ran; the load averages below show how much. Absolute times are
therefore noisy and only settings measured in the same interleaved rounds compare.

{sections}""")


if __name__ == "__main__":
    n_rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    which = sys.argv[2] if len(sys.argv) > 2 else "all"
    path = RESULTS / "loaders.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    for case_name in CASES if which == "all" else [which]:
        stored[case_name] = measure(CASES[case_name], n_rounds)
        write(stored)
    print((RESULTS / "loaders.md").read_text())
