"""Loader workers vs none: images/s of the features stage and how busy the model is.

EfficientNet-Lite0 at 160 px on the bundled photos (1,200 crops of 160 px, as in the
default config), the default run's four layers, batch 64, 2 compute threads. Each
setting of ``workers`` runs :func:`extract_shard` end to end from the image files,
interleaved over rounds (best wall time of each); "busy" is the time in the model's
forward passes over the whole loop (waiting for batches included), as the features
shard log reports it. The outputs of every setting are checked to be byte-identical.
Run: `PYTHONPATH=src python benchmarks/loaders.py [rounds]`. Writes benchmarks/results/loaders.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from featvis.core.device import make_deterministic
from featvis.vision.data import build_photos
from featvis.vision.features import LoopTime, extract_shard
from featvis.vision.models import load_model

LAYERS = ["_blocks.1", "_blocks.4", "_blocks.10", "_conv_head"]
SPEC = {"architecture": "efficientnet_lite0", "image_size": 160}
BATCH, THREADS, WORKERS = 64, 2, (0, 1, 2)
OUT = Path(__file__).parent / "results" / "loaders.md"


def measure(rounds: int) -> tuple[dict[int, LoopTime], int]:
    make_deterministic(0, THREADS)
    model = load_model(SPEC, "efficientnet_lite0")
    with tempfile.TemporaryDirectory() as tmp:
        paths = build_photos(Path(tmp) / "photos", n_crops=1200, crop_px=160)["path"].tolist()
        extract_shard(model, paths[:BATCH], LAYERS, torch.device("cpu"), BATCH, progress=False)  # warm-up
        best: dict[int, LoopTime] = {}
        reference = None
        for _ in range(rounds):
            for workers in WORKERS:
                timing = LoopTime()
                result = extract_shard(model, paths, LAYERS, torch.device("cpu"), BATCH, progress=False,
                                       workers=workers, timing=timing)
                flat = {(layer, stat): a.tobytes() for layer, stats in result.items() for stat, a in stats.items()}
                reference = reference or flat
                assert flat == reference, f"workers={workers} changed the features"
                if workers not in best or timing.wall_s < best[workers].wall_s:
                    best[workers] = timing
                print(timing.summary(f"workers {workers}"), flush=True)
    return best, len(paths)


def write(best: dict[int, LoopTime], n: int, rounds: int) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows = "\n".join(f"| {w} | {t.wall_s:.2f} | {t.images / t.wall_s:.1f} | {t.forward_s:.2f} | **{100 * t.busy:.1f}%** |"
                     for w, t in sorted(best.items()))
    OUT.write_text(f"""# Loader workers: is the model kept busy?

`python benchmarks/loaders.py {rounds}`: EfficientNet-Lite0 at 160 px, the bundled photos ({n:,} crops of
160 px), layers {", ".join(LAYERS)}, batch {BATCH}, {THREADS} compute threads, `extract_shard` end to end
from the PNG files; best of {rounds} interleaved rounds per setting. The features are byte-identical for
every setting (checked in the run).

**Shared machine:** 2 cores, shared with other engineers' jobs while this ran (load average {load} at
the end), so the absolute numbers are noisy; the same loop is what the features shard log reports.

| `features.workers` | loop wall (s) | images/s | forward passes (s) | busy (forward / wall) |
|---:|---:|---:|---:|---:|
{rows}

Busy = time inside the model's forward passes over the whole extract loop (waiting for the
next batch, per-layer reductions and the forward passes).
""")


if __name__ == "__main__":
    n_rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    results, n_images = measure(n_rounds)
    write(results, n_images, n_rounds)
    print(OUT.read_text())
