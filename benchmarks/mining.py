"""Top-K patch mining vs a bare forward pass, and mining's peak memory vs dataset size.

EfficientNet-Lite0 at 160 px on the bundled photos (a manifest from a pipeline run),
four layers (_blocks.1, _blocks.4, _blocks.10, _conv_head), K = 9, batch 64, 2 threads.
Timing is measured side by side in one process, interleaved over rounds (best of
each), two ways: on pre-decoded batches (compute only) and end to end from image files.
Memory: each dataset size runs mine_topk in a fresh subprocess; peak RSS is compared.
Run from a pipeline run's directory: `PYTHONPATH=src python benchmarks/mining.py
results/data/photos/manifest.csv [timing|memory|all]`. Writes benchmarks/results/mining.md
(timing) and mining_memory.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from featvis.core.hooks import capture, run_to_layers
from featvis.vision.data import iter_batches, read_manifest
from featvis.vision.mining import Miner, mine_topk
from featvis.vision.models import load_model

LAYERS = ["_blocks.1", "_blocks.4", "_blocks.10", "_conv_head"]
SPEC = {"architecture": "efficientnet_lite0", "image_size": 160}
BATCH, K, THREADS, ROUNDS = 64, 9, 2, 3


@torch.no_grad()
def bare(model, batches) -> float:
    start = time.perf_counter()
    for _, batch in batches:
        model.module(batch)
    return time.perf_counter() - start


@torch.no_grad()
def mining(model, batches) -> float:
    start = time.perf_counter()
    miner = Miner(K)
    with capture(model.module, LAYERS, stop_early=True) as outputs:
        for begin, batch in batches:
            run_to_layers(model.module, batch, outputs)
            miner.add(outputs, begin)
    miner.result()
    return time.perf_counter() - start


@torch.no_grad()
def bare_from_files(model, paths) -> float:
    return bare(model, iter_batches(paths, model.preprocess, BATCH))


def mining_from_files(model, paths) -> float:
    start = time.perf_counter()
    mine_topk(model, paths, LAYERS, K, torch.device("cpu"), BATCH, progress=False)
    return time.perf_counter() - start


MEMORY_PROBE = """
import json, sys, threading, time, torch
torch.set_num_threads(2)
from featvis.vision.data import read_manifest
from featvis.vision.mining import mine_topk
from featvis.vision.models import load_model

def rss():  # current resident set size in MiB
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096 / 2**20

manifest, n, spec, layers, k, batch = json.loads(sys.argv[1])
paths = read_manifest(manifest)['path'].tolist()
paths = (paths * (n // len(paths) + 1))[:n]
model = load_model(spec)
before, peak, done = rss(), [0.0], threading.Event()

def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.01)

thread = threading.Thread(target=sample)
thread.start()
result = mine_topk(model, paths, layers, k, torch.device('cpu'), batch, progress=False)
done.set()
thread.join()
state = sum(a.nbytes for layer in result.values() for a in layer.values())
print(json.dumps({'before': before, 'peak': peak[0], 'state_bytes': state}))
"""


def peak_memory(manifest: str, n: int) -> dict:
    """Mining over n images (the manifest repeated) in a fresh process: resident memory
    before mining and its peak during mining (sampled every 10 ms), in MiB."""
    args = json.dumps([manifest, n, SPEC, LAYERS, K, BATCH])
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def timing(manifest: str) -> list[str]:
    torch.set_num_threads(THREADS)
    model = load_model(SPEC, "efficientnet_lite0")
    paths = read_manifest(manifest)["path"].tolist()
    batches = list(iter_batches(paths, model.preprocess, BATCH))
    mining(model, batches[:2])  # warm-up
    times = {"bare": [], "mining": [], "bare_files": [], "mining_files": []}
    for _ in range(ROUNDS):
        times["bare"].append(bare(model, batches))
        times["mining"].append(mining(model, batches))
        times["bare_files"].append(bare_from_files(model, paths))
        times["mining_files"].append(mining_from_files(model, paths))
        print({k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    best = {k: min(v) for k, v in times.items()}
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    return [
        "# Patch mining vs a bare forward pass",
        "",
        f"EfficientNet-Lite0, 160 px, {len(paths):,} photos, layers {', '.join(LAYERS)}, K = {K}, "
        f"batch {BATCH}, {THREADS} threads, best of {ROUNDS} interleaved rounds. Shared machine (load average "
        f"{load} at the end): compare the ratios.",
        "",
        "| pass | bare forward (s) | mining (s) | ratio |",
        "|---|---:|---:|---:|",
        f"| pre-decoded batches (compute only) | {best['bare']:.2f} | {best['mining']:.2f} | "
        f"**{best['mining'] / best['bare']:.3f}x** |",
        f"| end to end from image files | {best['bare_files']:.2f} | {best['mining_files']:.2f} | "
        f"**{best['mining_files'] / best['bare_files']:.3f}x** |",
        "",
        "Bare forward = the whole model (to the logits), no hooks. Mining = forward to the last mined layer "
        "(early stop), per-image spatial maxima and the (C x K) top-K update for all four layers.",
        "Target: at most 1.10x.",
        "",
    ]


def memory(manifest: str) -> list[str]:
    n = len(read_manifest(manifest))
    found = {size: peak_memory(manifest, size) for size in (n // 4, n, 4 * n)}
    return [
        "# Patch mining: peak memory vs number of images",
        "",
        f"EfficientNet-Lite0, 160 px, layers {', '.join(LAYERS)}, K = {K}, batch {BATCH}; the photos manifest "
        "repeated to each size; a fresh process per size. Resident memory is sampled every 10 ms while mining.",
        "",
        "| images | RSS before mining (MiB) | peak RSS while mining (MiB) | growth (MiB) | top-K state (bytes) |",
        "|---:|---:|---:|---:|---:|",
        *[f"| {size:,} | {m['before']:.0f} | {m['peak']:.0f} | {m['peak'] - m['before']:.0f} | "
          f"{m['state_bytes']:,} |" for size, m in found.items()],
        "",
        "The growth is one batch of images and activations; the top-K state is O(channels x K) per layer. "
        "Neither depends on the number of images.",
        "",
    ]


def main(manifest: str, part: str = "all") -> None:
    results = Path(__file__).parent / "results"
    parts = {"timing": ("mining.md", timing), "memory": ("mining_memory.md", memory)}
    for key, (name, make) in parts.items():
        if part in ("all", key):
            lines = make(manifest)
            (results / name).write_text("\n".join(lines))
            print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/data/photos/manifest.csv",
         sys.argv[2] if len(sys.argv) > 2 else "all")
