"""Shard merges at the shard count of a 1,000,000-image run, on synthetic shards (docs/scale.md).

Synthetic shard outputs in the real on-disk formats: the features stage's per-shard ``.npz``
(``write_shard``: mean, max, argmax, min, argmin, spatial) and the miner's per-shard top-K ``.npz`` (value,
image, y, x, negative, spatial, as rule patches_shard saves it). Then the real merge functions
run over them, each in a fresh process so its peak RSS is its own:

- ``merge_shards``: one layer's shards concatenated into memory-mapped ``.npy``;
- ``merge_topk``: the exact top-K of the shards' top-Ks (the negative miner's merge);
- ``topk_from_stats``: the top-K streamed from the merged maxima (how maximal patches are made).

    PYTHONPATH=src python benchmarks/scale_merge.py --shards 100 --per-shard 500 1000 --channels 1280

Shards hold fewer images than a real 10,000-image shard (disk); the cost of the concatenation and
of the streamed top-K grows with the total number of rows, so 1,000,000 images are extrapolated
linearly from the measured rows (the two --per-shard sizes check the linearity). Writes
benchmarks/results/scale_merge.md and scale_merge.json; synthetic files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from featvis.core.io import save_npz
from featvis.vision.features import write_shard

HERE = Path(__file__).resolve().parent
LAYER = "_conv_head"
SPATIAL = (5, 5)  # _conv_head's grid at 160 px
TARGET_IMAGES = 1_000_000


def synthetic_stats(shard: int, n: int, channels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One shard's per-image statistics (as ``extract_shard`` gives for one layer), seeded by shard."""
    rng = np.random.default_rng([seed, shard])
    maxima = rng.gamma(2.0, 1.0, size=(n, channels)).astype(np.float32)
    mean = (maxima * rng.uniform(0.2, 0.6, size=(n, channels))).astype(np.float32)
    return {"mean": mean, "max": maxima,
            "argmax": rng.integers(0, SPATIAL[0], size=(n, channels, 2)).astype(np.int32),
            "min": (mean * rng.uniform(0.0, 0.5, size=(n, channels))).astype(np.float32),
            "argmin": rng.integers(0, SPATIAL[0], size=(n, channels, 2)).astype(np.int32),
            "spatial": np.array(SPATIAL, np.int32)}


def shard_topk(stats: dict[str, np.ndarray], start: int, k: int) -> dict[str, np.ndarray]:
    """A shard's top-K in the miner's format: (C, k) best first, ties to the lower image; a shard
    of fewer than k images keeps them all (as ``mine_topk(partial=True)``)."""
    order = np.argsort(-stats["max"], axis=0, kind="stable")[:k].T  # (C, k) rows of the shard
    channel = np.arange(order.shape[0])[:, None]
    return {"value": stats["max"][order, channel], "image": (order + start).astype(np.int64),
            "y": stats["argmax"][order, channel, 0], "x": stats["argmax"][order, channel, 1],
            "negative": np.array(False), "spatial": stats["spatial"]}


def write_shards(root: Path, n_shards: int, per_shard: int, channels: int, k: int, seed: int = 0) -> None:
    """Shard ``i`` holds images ``i * per_shard ..``: features/<i>/<layer>.npz and miner/<i>/<layer>.npz."""
    for i in range(n_shards):
        stats = synthetic_stats(i, per_shard, channels, seed)
        write_shard({LAYER: stats}, root / "features" / str(i))
        (root / "miner" / str(i)).mkdir(parents=True, exist_ok=True)
        save_npz(root / "miner" / str(i) / f"{LAYER}.npz", **shard_topk(stats, i * per_shard, k))


def merge_features(root: Path, n_shards: int) -> None:
    from featvis.vision.features import merge_shards

    merge_shards([root / "features" / str(i) / f"{LAYER}.npz" for i in range(n_shards)], root / "merged",
                 layer=LAYER)


def merge_miner(root: Path, n_shards: int, k: int) -> dict[str, np.ndarray]:
    from featvis.vision.mining import merge_topk

    return merge_topk([dict(np.load(root / "miner" / str(i) / f"{LAYER}.npz")) for i in range(n_shards)], k)


def topk_merged(root: Path, k: int) -> dict[str, np.ndarray]:
    from featvis.vision.mining import topk_from_stats

    return topk_from_stats(np.load(root / "merged" / "max.npy", mmap_mode="r"),
                           np.load(root / "merged" / "argmax.npy", mmap_mode="r"), k, spatial=SPATIAL)


def child(step: str, root: Path, n_shards: int, k: int) -> None:
    from memory_probe import MemoryProbe

    probe = MemoryProbe()
    start = time.perf_counter()
    if step == "merge_shards":
        merge_features(root, n_shards)
    elif step == "merge_topk":
        save_npz(root / "topk_miner.npz", **merge_miner(root, n_shards, k))
    else:
        save_npz(root / "topk_stats.npz", **topk_merged(root, k))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"step": step, "seconds": seconds, "peak_rss_mib": peak, **probe.peaks()}))


def measure(step: str, root: Path, n_shards: int, k: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "child", step, str(root), str(n_shards), str(k)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def baseline_rss() -> float:
    """Peak RSS of a process that only imports what the merges import (numpy, torch, featvis)."""
    code = ("import resource, featvis.vision.mining, featvis.vision.features; "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)


def simulate(workdir: Path, n_shards: int, per_shard: int, channels: int, k: int) -> dict:
    root = workdir / f"merge_{n_shards}x{per_shard}"
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    write_shards(root, n_shards, per_shard, channels, k)
    written = time.perf_counter() - start
    shard_bytes = sum(f.stat().st_size for f in (root / "features").rglob("*.npz"))
    miner_bytes = sum(f.stat().st_size for f in (root / "miner").rglob("*.npz"))
    steps = {step: measure(step, root, n_shards, k) for step in ("merge_shards", "merge_topk", "topk_from_stats")}
    merged_bytes = sum(f.stat().st_size for f in (root / "merged").glob("*.npy"))
    # the two top-K routes agree (both exact), a check that the simulation is the real thing
    agree = all(np.array_equal(np.load(root / "topk_miner.npz")[key], np.load(root / "topk_stats.npz")[key])
                for key in ("value", "image", "y", "x"))
    shutil.rmtree(root)
    return {"shards": n_shards, "per_shard": per_shard, "images": n_shards * per_shard, "channels": channels,
            "k": k, "write_s": written, "feature_shard_mib": shard_bytes / 2**20,
            "miner_shard_mib": miner_bytes / 2**20, "merged_mib": merged_bytes / 2**20, "steps": steps,
            "topk_routes_agree": agree}


def report(results: list[dict], base: float) -> str:
    lines = ["# Shard merges at 1,000,000-image shard counts (simulated)", "",
             "Written by `benchmarks/scale_merge.py` (raw: `scale_merge.json`). Synthetic shards in the real on-disk "
             f"formats for one layer of {results[0]['channels']} channels ({LAYER}, grid {SPATIAL[0]}x{SPATIAL[1]}), "
             f"K = {results[0]['k']}; each merge in a fresh process. Machine: 2 CPU cores shared with other "
             f"concurrent jobs. Peak RSS of a process that only imports numpy, torch and featvis: {base:.0f} MiB.", "",
             "Peak RSS (getrusage) counts the pages of memory-mapped files; it is split here into the peak "
             "*anonymous* memory (what the process holds) and the peak *file-backed* resident pages (the "
             ".npy files being written or streamed: page cache the kernel writes back and drops), both sampled "
             "from /proc/self/status every 20 ms.", "",
             "| shards | images/shard | images | step | seconds | peak RSS (MiB) | peak anonymous (MiB) "
             "| peak file-backed (MiB) |",
             "|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in results:
        for step, s in r["steps"].items():
            lines.append(f"| {r['shards']} | {r['per_shard']:,} | {r['images']:,} | {step} | {s['seconds']:.2f} | "
                         f"{s['peak_rss_mib']:.0f} | {s.get('peak_anon_mib', 0):.0f} | "
                         f"{s.get('peak_file_mib', 0):.0f} |")
    lines += ["", "| images | feature shards (MiB) | merged .npy (MiB) | miner shards (MiB) | top-K routes agree |",
              "|---:|---:|---:|---:|---|"]
    for r in results:
        lines.append(f"| {r['images']:,} | {r['feature_shard_mib']:.0f} | {r['merged_mib']:.0f} | "
                     f"{r['miner_shard_mib']:.1f} | {r['topk_routes_agree']} |")
    big = max(results, key=lambda r: r["images"])
    scale = TARGET_IMAGES / big["images"]
    lines += ["", f"## Extrapolated to {TARGET_IMAGES:,} images ({big['shards']} shards of "
              f"{TARGET_IMAGES // big['shards']:,}), linear in rows from the {big['images']:,}-image run", "",
              "| step | seconds (extrapolated) | grows with |", "|---|---:|---|",
              f"| merge_shards | {big['steps']['merge_shards']['seconds'] * scale:,.0f} | images x channels (bytes) |",
              f"| topk_from_stats | {big['steps']['topk_from_stats']['seconds'] * scale:,.0f} | images x channels |",
              f"| merge_topk | {big['steps']['merge_topk']['seconds']:.2f} (measured: independent of images/shard) | "
              "shards x K x channels |",
              "", f"Disk for this layer at {TARGET_IMAGES:,} images: feature shards "
              f"{big['feature_shard_mib'] * scale / 1024:.1f} GiB, merged {big['merged_mib'] * scale / 1024:.1f} GiB.",
              ""]
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--per-shard", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--channels", type=int, default=1280)
    parser.add_argument("--k", type=int, default=9)
    parser.add_argument("--workdir", type=Path, default=Path("/work/scale_bench"))
    args = parser.parse_args()
    results = []
    for per_shard in args.per_shard:
        print(f"[merge] {args.shards} shards x {per_shard} images", flush=True)
        results.append(simulate(args.workdir, args.shards, per_shard, args.channels, args.k))
    base = baseline_rss()
    (HERE / "results" / "scale_merge.json").write_text(json.dumps({"baseline_rss_mib": base, "runs": results},
                                                                  indent=1) + "\n")
    (HERE / "results" / "scale_merge.md").write_text(report(results, base))
    print(report(results, base))


if __name__ == "__main__":
    main()
