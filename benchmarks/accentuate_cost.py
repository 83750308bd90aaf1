"""Cost of feature accentuation against the render job of the same layer, in one process.

The default run's render job (EfficientNet-Lite0 ``_blocks.10``, channels 0-7, 128 px, 64 steps, the
Distill transforms) against the accentuation job of the same units (3 top photos each: 24 items at the
model's 160 px input, the ``render.accentuate`` defaults), run interleaved round after round so that
background load hits both alike. The goal (issue 20): accentuating 3 patches of a unit costs at most one
render of it, i.e. the accentuation job takes at most the render job's time.

Run: ``python benchmarks/accentuate_cost.py [--rounds 3] [--device cpu] [--out benchmarks/results/accentuate_cost.md]``
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see render_vs_lucent.py: busy-waiting on a shared machine

import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accent_seeds import top_seeds  # noqa: E402

from featvis.render.accentuate import AccentSettings, accentuate  # noqa: E402
from featvis.render.optimize import RenderSettings  # noqa: E402
from featvis.render.recipes import render_channels  # noqa: E402
from featvis.vision.models import load_model  # noqa: E402

LAYER, CHANNELS, PATCHES, INPUT = "_blocks.10", list(range(8)), 3, 160


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/accentuate_cost.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("efficientnet_lite0", "efficientnet_lite0")
    model, pre = loaded.module.to(args.device), loaded.preprocess
    targets, seeds = top_seeds(model.cpu(), LAYER, CHANNELS, PATCHES, pre.mean, pre.std, INPUT)
    model.to(args.device)
    render_settings = RenderSettings(size=128, steps=64, mean=pre.mean, std=pre.std)
    accent_settings = AccentSettings(mean=pre.mean, std=pre.std)
    jobs = {
        f"render job: {len(CHANNELS)} channels, 128 px, 64 steps": lambda: render_channels(
            model, LAYER, CHANNELS, render_settings, device=args.device),
        f"accentuation job: {len(targets)} items ({PATCHES} per channel), {INPUT} px, "
        f"{accent_settings.steps} steps": lambda: accentuate(model, LAYER, targets, seeds, accent_settings,
                                                            device=args.device),
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(args.rounds):
        for name, job in jobs.items():
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            job()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    render_name, accent_name = list(jobs)
    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    rows = [f"| {name} | {best[name]:.2f} | {median[name]:.2f} |" for name in jobs]
    ratio_best, ratio_median = best[accent_name] / best[render_name], median[accent_name] / median[render_name]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "# Accentuation cost against a render of the same layer",
        "",
        f"`python benchmarks/accentuate_cost.py --rounds {args.rounds} --device {args.device}` "
        f"({platform.machine()}, torch {torch.__version__}, {args.threads} threads, load average {load:.1f} at "
        "the end; rounds interleaved).",
        "",
        "| job | best (s) | median (s) |",
        "|---|---|---|",
        *rows,
        "",
        f"Accentuating {PATCHES} top photos of each unit costs **{ratio_best:.2f}** renders of it (best rounds; "
        f"{ratio_median:.2f} on medians). Goal: at most 1.",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
