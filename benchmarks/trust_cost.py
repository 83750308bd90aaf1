"""The trust stage's cost as a fraction of its render job's, on the default run's layer.

In one process, on the default config's render job `blocks10` (EfficientNet-Lite0 `_blocks.10`,
channels 0 to 7, 128 px, 64 steps; ImageNet weights) and its natural images (the features
stage's `max.npy` and manifest of the default run, which must exist under results/):

1. the render job's work: `render_channels` with the job's settings (as scripts/render_layer.py);
2. the trust job's work, in two parts: the seed renders (`trust.seeds` - 1 = 2 new renders per
   unit; copy 0 is reused) and the path check plus seed stability (reading the top-8 and bottom-8
   images of every unit and running the model on them and on the renders).

Wall and CPU time (`time.process_time`, every thread of the process) are both recorded: the
machine is shared, and CPU time moves less with the load of other processes than wall time does.
Run: `PYTHONPATH=src python benchmarks/trust_cost.py`; writes benchmarks/results/trust_cost.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from featvis.core.config import load_yaml, resolve
from featvis.render.jobs import fit_to_model, settings_from_job
from featvis.render.recipes import render_channels
from featvis.trust.stage import Natural, TrustOptions, check_job, seed_renders
from featvis.vision.data import model_image, read_manifest, to_tensor
from featvis.vision.models import load_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "trust_cost.md"
JOB = "blocks10"


def timed(work):
    wall, cpu = time.perf_counter(), time.process_time()
    value = work()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    torch.set_num_threads(2)  # the default run's `threads`
    config = resolve(load_yaml(ROOT / "config/config.yaml"), load_yaml(ROOT / "workflow/schemas/config.schema.yaml"))
    job = config["render"]["jobs"][JOB]
    loaded = load_model(config["models"][job["model"]], job["model"])
    job = fit_to_model(job, loaded)
    settings = settings_from_job(job, loaded.preprocess.mean, loaded.preprocess.std)
    layer, channels = job["layer"], list(job["channels"])
    batch, render_wall, render_cpu = timed(lambda: render_channels(loaded.module, layer, channels, settings,
                                                                   seed=job["seed"]))
    options = TrustOptions(**{k: config["trust"][k] for k in ("k", "reference", "seeds", "probe_layers",
                                                              "threshold")})
    reuse = dict(zip(channels, batch.result.images, strict=True))
    seeds, seed_wall, seed_cpu = timed(lambda: seed_renders(loaded.module, layer, channels, settings, job["seed"],
                                                            options.seeds, "cpu", reuse))
    base = ROOT / "results/features/efficientnet_lite0/photos" / layer
    paths = list(read_manifest(ROOT / "results/data/photos/manifest.csv")["path"])
    natural = Natural("photos", np.load(base / "max.npy"), paths)

    def load(rows):
        return to_tensor([model_image(paths[i], loaded.preprocess) for i in rows], loaded.preprocess)

    record, check_wall, check_cpu = timed(lambda: check_job(
        loaded.module, layer, channels, batch.result.images, batch.names, settings, options, natural, load, seeds,
        None, "cpu", job["model"]))
    rows = [("render job (8 units, 64 steps)", render_wall, render_cpu),
            (f"trust: seed renders ({options.seeds - 1} new per unit)", seed_wall, seed_cpu),
            ("trust: path check + seed stability", check_wall, check_cpu),
            ("trust: total", seed_wall + check_wall, seed_cpu + check_cpu)]
    lines = [f"# Trust stage cost (benchmarks/trust_cost.py, {os.cpu_count()} CPUs seen, torch threads 2)", "",
             f"Default run, render job `{JOB}`: {job['model']} `{layer}`, channels {channels}, "
             f"{job['size']} px, {job['steps']} steps; trust k={options.k}, reference {options.reference}, "
             f"seeds {options.seeds}.", "",
             "| work | wall s | CPU s | CPU, share of the render job |", "|---|---|---|---|"]
    lines += [f"| {name} | {wall:.1f} | {cpu:.1f} | {cpu / render_cpu:.0%} |" for name, wall, cpu in rows]
    scores = [u["checks"][0]["score"] for u in record["units"]]
    lines += ["", "Scores: " + ", ".join(f"{c}: {s:.2f}" for c, s in zip(channels, scores, strict=True))]
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(yaml.safe_dump([u["seed_stability"]["seeds_mean"] for u in record["units"]]))


if __name__ == "__main__":
    main()
