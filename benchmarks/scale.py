"""Scale benchmark: every image stage end to end on a generated dataset, against a bare forward pass.

For each N, images are generated (benchmarks/scale_data.py), then each stage runs in its own
fresh Python process (as a Snakemake job would) through the same library functions the rule
scripts call. Per stage: the work time (after imports and model loading), the start-up time
(imports, model load), the process's wall time, peak RSS (the process and any worker processes
it started) and images/s. The reference is a bare forward pass: the same images, decoded,
resized and run through the whole model at the same batch size, with no hooks and no statistics.

    PYTHONPATH=src python benchmarks/scale.py run --n 1000 10000 [--stages data forward ...]
    PYTHONPATH=src python benchmarks/scale.py report   # rewrite scale.md from scale.json

Results: benchmarks/results/scale.json (raw, merged across runs) and scale.md (tables). Work
files live under --workdir (default /work/scale_bench, outside the repository).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
MODEL = "efficientnet_lite0"
SPEC = {"architecture": "efficientnet_lite0", "image_size": 160}
LAYERS = ["_blocks.1", "_blocks.4", "_blocks.10", "_conv_head"]  # the default config's analysis layers
FIGURE_LAYER = "_blocks.10"  # the layer whose patch figure and gallery pages are made
NEIGHBOR_LAYERS = ["_blocks.10", "_conv_head"]
EMBED_LAYER = "_conv_head"
BATCH, K, THREADS, SEED = 64, 9, 2, 0
DATASET = "bench"
# Stages in pipeline order; "forward" is the reference, not part of the pipeline.
STAGES = ["data", "forward", "features", "features_merge", "patches", "patches_min", "patch_figures",
          "neighbors", "neighbors_exact", "embed_pca", "embed_tsne", "embed_umap", "gallery"]
STREAMING = ["data", "forward", "features", "features_merge", "patches"]
NOT_PIPELINE = ("forward", "neighbors_exact")  # the reference, and an alternative to the neighbors stage
FEATURES_AND_PATCHES = ["features", "features_merge", "patches"]
TORCH_STAGES = ("forward", "features", "patches_min", "patch_figures")  # the stages that run the model


# --- child side: one stage in this process -------------------------------------------------


def loader_options(function, workers: int | None) -> dict:
    """``workers`` passed under whatever name the loader function takes it, if it takes one."""
    if workers is None:
        return {}
    names = inspect.signature(function).parameters
    for name in ("workers", "num_workers", "loader_workers"):
        if name in names:
            return {name: workers}
    return {}


def _paths(work: Path) -> list[str]:
    from featvis.vision.data import read_manifest

    return read_manifest(work / "manifest.csv")["path"].tolist()


def _shards(n: int, shard_size: int) -> list[tuple[int, int]]:
    from featvis.vision.features import shard_slices

    return shard_slices(n, math.ceil(n / shard_size))


def _results(work: Path) -> Path:
    return work / "results"


def _layer_dir(work: Path, layer: str) -> Path:
    return _results(work) / "features" / MODEL / DATASET / layer


def stage_data(work: Path, opts: dict, _device) -> dict:
    from featvis.vision.data import build_rows, check_images, folder_digest, write_manifest

    folder = str(work / "images")
    start = time.perf_counter()
    folder_digest(folder)  # the Snakefile's data-rule param: stats every image at DAG time
    digest_s = time.perf_counter() - start
    rows = build_rows({"source": "folder", "path": folder, "on_error": "raise"}, folder)
    manifest, skipped, quality = check_images(rows, "raise", workers=THREADS)  # as the data rule: threads processes
    write_manifest(skipped, work / "skipped.csv")
    write_manifest(quality, work / "quality.csv")
    write_manifest(manifest, work / "manifest.csv")
    return {"images": len(manifest), "digest_s": digest_s}


def stage_forward(work: Path, opts: dict, device) -> int:
    import torch

    from featvis.vision.data import iter_batches
    from featvis.vision.models import load_model

    model = load_model(SPEC, MODEL)
    paths = _paths(work)
    module = model.module.to(device)
    with torch.no_grad():
        for _, batch in iter_batches(paths, model.preprocess, BATCH, **loader_options(iter_batches, opts["workers"])):
            module(batch.to(device))
    return len(paths)


def stage_features(work: Path, opts: dict, device) -> int:
    from featvis.vision.features import extract_shard, write_shard
    from featvis.vision.models import load_model

    model = load_model(SPEC, MODEL)
    paths = _paths(work)
    extra = loader_options(extract_shard, opts["workers"])
    for i, (start, stop) in enumerate(_shards(len(paths), opts["shard_size"])):
        shard = extract_shard(model, paths[start:stop], LAYERS, device, BATCH, progress=False, **extra)
        write_shard(shard, work / "shards" / "features" / str(i))
        del shard
    return len(paths)


def stage_features_merge(work: Path, opts: dict, _device) -> int:
    from featvis.vision.data import manifest_hash, read_manifest
    from featvis.vision.features import merge_shards

    manifest = read_manifest(work / "manifest.csv")
    n_shards = len(_shards(len(manifest), opts["shard_size"]))
    for layer in LAYERS:
        files = [work / "shards" / "features" / str(i) / f"{layer}.npz" for i in range(n_shards)]
        merge_shards(files, _layer_dir(work, layer), model=MODEL, model_spec=SPEC, layer=layer, dataset=DATASET,
                     dataset_hash=manifest_hash(manifest), batch_size=BATCH)
    return len(manifest)


def stage_patches(work: Path, opts: dict, _device) -> int:
    import numpy as np

    from featvis.core.io import read_json, save_npz
    from featvis.vision.mining import topk_from_stats

    for layer in LAYERS:
        base = _layer_dir(work, layer)
        spatial = tuple(read_json(base / "meta.json")["spatial"])
        topk = topk_from_stats(np.load(base / "max.npy", mmap_mode="r"), np.load(base / "argmax.npy", mmap_mode="r"),
                               K, spatial=spatial)
        save_npz(_results(work) / "patches" / MODEL / DATASET / layer / "top_max.npz", **topk)
    return len(np.load(_layer_dir(work, LAYERS[0]) / "max.npy", mmap_mode="r"))


def stage_patches_min(work: Path, opts: dict, device) -> int:
    """The negative miner: its own pass over the images (shards, then the exact merge)."""
    from featvis.core.io import save_npz
    from featvis.vision.mining import merge_topk, mine_topk
    from featvis.vision.models import load_model

    model = load_model(SPEC, MODEL)
    paths = _paths(work)
    extra = loader_options(mine_topk, opts["workers"])
    parts: dict[str, list] = {layer: [] for layer in LAYERS}
    for start, stop in _shards(len(paths), opts["shard_size"]):
        mined = mine_topk(model, paths[start:stop], LAYERS, K, device, BATCH, negative=True, offset=start,
                          partial=True, progress=False, **extra)
        for layer in LAYERS:
            parts[layer].append(mined[layer])
    for layer in LAYERS:
        save_npz(_results(work) / "patches" / MODEL / DATASET / layer / "top_min.npz", **merge_topk(parts[layer], K))
    return len(paths)


def stage_patch_figures(work: Path, opts: dict, _device) -> int:
    """As rules layer_table (the receptive-field trace) and patches_figures do, for one layer and
    the maximal patches: the grid of 16 channels and every channel's unit strip."""
    import numpy as np

    from featvis.core.figures import save_figure
    from featvis.core.units import write_unit_image
    from featvis.vision.models import load_model
    from featvis.vision.patches import layer_grid, topk_patches, unit_strip
    from featvis.vision.receptive import ReceptiveFields

    model = load_model(SPEC, MODEL)
    shape = model.preprocess.input_shape()
    field = ReceptiveFields(model.module, shape, [FIGURE_LAYER]).layer_field(FIGURE_LAYER)
    out = _results(work) / "patches" / MODEL / DATASET / FIGURE_LAYER
    topk = dict(np.load(out / "top_max.npz"))
    paths = _paths(work)
    size, channels = tuple(shape[2:]), shape[1]
    shown = list(range(16))
    save_figure(layer_grid(topk_patches(topk, field, paths, size, channels, shown), shown, FIGURE_LAYER),
                out / "grid_max.png")
    units = _results(work) / "units" / MODEL / FIGURE_LAYER / "patches_max" / DATASET
    n_channels = topk["value"].shape[0]
    for start in range(0, n_channels, 64):
        chunk = list(range(start, min(start + 64, n_channels)))
        for c, row in zip(chunk, topk_patches(topk, field, paths, size, channels, chunk)):
            write_unit_image(units, c, "patches", unit_strip(row), {"values": topk["value"][c].tolist()}, "jpg")
    return len(paths)


def stage_neighbors(work: Path, opts: dict, _device, index: str = "faiss_hnsw") -> int:
    import numpy as np

    from featvis.core.figures import save_figure
    from featvis.vision.data import display_image, read_manifest
    from featvis.vision.neighbors import nearest, neighbor_grid, resolve_queries

    manifest = read_manifest(work / "manifest.csv")
    paths, labels = manifest["path"].tolist(), manifest["label"].tolist()
    queries = resolve_queries(manifest, [], 6)
    for layer in NEIGHBOR_LAYERS:
        features = np.load(_layer_dir(work, layer) / "mean.npy", mmap_mode="r")
        for metric in ("l2", "cosine"):
            indices, dists = nearest(features, queries, 8, metric, index, THREADS)
            shown = sorted({int(i) for i in indices.ravel()} | set(queries))
            images = {i: display_image(paths[i], 160) for i in shown}
            save_figure(neighbor_grid(images, queries, indices, dists, labels, f"{layer} {metric}"),
                        _results(work) / "neighbors" / MODEL / DATASET / layer / f"{metric}_{index}.png")
    return len(paths)


def stage_neighbors_exact(work: Path, opts: dict, device) -> int:
    """The same with the default exact search, for comparison."""
    return stage_neighbors(work, opts, device, "exact")


def _embed(work: Path, method: str) -> int:
    import numpy as np

    from featvis.core.io import save_npy
    from featvis.vision.embed import fit_embedding, trust_neighbors, trustworthiness

    features = np.asarray(np.load(_layer_dir(work, EMBED_LAYER) / "mean.npy", mmap_mode="r"), dtype=np.float64)
    coords, _ = fit_embedding(features, method, seed=SEED, threads=THREADS)
    trustworthiness(features, coords, n_neighbors=trust_neighbors(len(features), 10), seed=SEED)
    save_npy(_results(work) / "embed" / MODEL / DATASET / EMBED_LAYER / f"{method}.npy", coords)
    return len(features)


def stage_embed_pca(work: Path, opts: dict, _device) -> int:
    return _embed(work, "pca")


def stage_embed_tsne(work: Path, opts: dict, _device) -> int:
    return _embed(work, "tsne")


def stage_embed_umap(work: Path, opts: dict, _device) -> int:
    return _embed(work, "umap")


def stage_gallery(work: Path, opts: dict, _device) -> int:
    """One layer's pages (featvis.gallery.layer.build_layer, as rule gallery_layer calls it), from
    the patch figure stage's unit pictures and grid and the features stage's maxima."""
    from featvis.gallery.layer import build_layer

    results = _results(work)
    units = results / "units" / MODEL / FIGURE_LAYER / "patches_max" / DATASET
    grid = results / "patches" / MODEL / DATASET / FIGURE_LAYER / "grid_max.png"
    build_layer(results / "gallery" / MODEL / FIGURE_LAYER, results, MODEL, FIGURE_LAYER,
                {DATASET: str(_layer_dir(work, FIGURE_LAYER) / "max.npy")}, [str(grid)], producers=[str(units)])
    return len(_paths(work))


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its finished worker processes: on a shared
    machine it is steadier than wall time, which also counts waiting for a core."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_stage(name: str, work: Path, opts: dict) -> None:
    """Child entry: run one stage, write its record to ``work/stage_<name>.json``."""
    started = time.perf_counter()
    if name in TORCH_STAGES:  # as a rule script does: torch first, so start_job fixes its threads and device
        import featvis.vision.models  # noqa: F401 - start-up cost counted apart from the work
    from featvis.core.runtime import start_job

    device = start_job([], {"seed": SEED, "threads": THREADS, "device": "cpu"})
    from memory_probe import MemoryProbe

    probe = MemoryProbe()
    ready, cpu_ready = time.perf_counter(), cpu_seconds()
    result = globals()[f"stage_{name}"](work, opts, device)  # images, or a dict with images and more
    result = result if isinstance(result, dict) else {"images": result}
    done, cpu_done = time.perf_counter(), cpu_seconds()
    peak_kib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                   resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    record = {"stage": name, **result, "work_s": done - ready, "cpu_s": cpu_done - cpu_ready,
              "startup_s": ready - started,
              "peak_rss_mib": peak_kib / 1024, **probe.peaks()}
    (work / f"stage_{name}.json").write_text(json.dumps(record))


# --- parent side ----------------------------------------------------------------------------


def generate_images(work: Path, n: int, workers: int) -> dict:
    from scale_data import generate

    start = time.perf_counter()
    paths = generate(work / "images", n, seed=SEED, workers=workers)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in paths)
    return {"generate_s": seconds, "images_mib": size / 2**20}


def make_subset(source: int, n: int, workdir: Path, seed: int = SEED) -> None:
    """A run directory of ``n`` images drawn (seeded, in manifest order) from the run of ``source``
    images: its manifest rows and the same rows of its merged features, so the stages after the
    features stage can be measured at a second N on real features without another forward pass."""
    import numpy as np

    from featvis.core.io import read_json, save_npy, write_json
    from featvis.vision.data import read_manifest, write_manifest
    from featvis.vision.features import STATS

    src, work = workdir / str(source), workdir / str(n)
    manifest = read_manifest(src / "manifest.csv")
    rows = np.sort(np.random.default_rng(seed).choice(len(manifest), n, replace=False))
    work.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest.iloc[rows].reset_index(drop=True), work / "manifest.csv")
    for layer in LAYERS:
        for stat in STATS:
            save_npy(_layer_dir(work, layer) / f"{stat}.npy", np.load(_layer_dir(src, layer) / f"{stat}.npy")[rows])
        meta = read_json(_layer_dir(src, layer) / "meta.json")
        write_json(_layer_dir(work, layer) / "meta.json", {**meta, "n_images": n, "subset_of": source})
    (work / "SUBSET_OF").write_text(str(source))


def run_child(name: str, work: Path, opts: dict) -> dict:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "stage", name, str(work), json.dumps(opts)],
                   check=True)
    wall = time.perf_counter() - start
    record = json.loads((work / f"stage_{name}.json").read_text())
    record.update(process_s=wall, load_before=load_before, load_after=os.getloadavg()[0])
    record["images_per_s"] = record["images"] / record["work_s"] if record["work_s"] > 0 else None
    return record


def ingest(n: int, name: str, workdir: Path) -> None:
    """Record a stage whose process ran on without its parent (``stage`` run by hand, or a parent
    stopped so other stages could run beside it): process wall time and load are not known."""
    work = workdir / str(n)
    record = json.loads((work / f"stage_{name}.json").read_text())
    record.update(process_s=None, load_before=None, load_after=os.getloadavg()[0], ingested=True,
                  images_per_s=record["images"] / record["work_s"])
    data = load_json()
    data["runs"][str(n)]["stages"][name] = record
    save_json(data)
    write_report(data)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "note": "load average recorded per stage"}


def load_json() -> dict:
    path = RESULTS / "scale.json"
    return json.loads(path.read_text()) if path.exists() else {"runs": {}}


def save_json(data: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def benchmark(sizes: list[int], stages: list[str], workdir: Path, opts: dict, gen_workers: int) -> None:
    for n in sizes:
        work = workdir / str(n)
        work.mkdir(parents=True, exist_ok=True)
        data = load_json()
        run = data["runs"].setdefault(str(n), {"stages": {}})
        subset = work / "SUBSET_OF"  # images and features taken from a larger run (make_subset)
        images = ({"generate_s": 0.0, "images_mib": 0.0, "subset_of": int(subset.read_text())} if subset.exists()
                  else generate_images(work, n, gen_workers))
        run.update(images, machine=machine(), options=opts)
        for name in [s for s in STAGES if s in stages]:
            print(f"[scale] N={n} stage {name} ...", flush=True)
            record = run_child(name, work, opts)
            print(f"[scale] N={n} {name}: {record['work_s']:.1f} s, {record['peak_rss_mib']:.0f} MiB", flush=True)
            data = load_json()  # another invocation may have written meanwhile
            data["runs"].setdefault(str(n), run)["stages"][name] = record
            data["runs"][str(n)].update({k: v for k, v in run.items() if k != "stages"})
            run = data["runs"][str(n)]
            save_json(data)
        write_report(load_json())


# --- report ---------------------------------------------------------------------------------


def ratio(stages: dict, names: list[str], key: str = "work_s") -> float | None:
    """Summed ``key`` (work_s: wall; cpu_s: CPU time) of ``names`` over the bare forward pass's."""
    if "forward" not in stages or not all(key in stages[s] for s in [*names, "forward"] if s in stages):
        return None
    if not all(s in stages for s in names) or stages["forward"].get(key) is None:
        return None
    return sum(stages[s][key] for s in names) / stages["forward"][key]


def _fmt(value, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def _ratios(stages: dict, names: list[str]) -> str:
    return f"**{_fmt(ratio(stages, names), '.3f')}×** wall, **{_fmt(ratio(stages, names, 'cpu_s'), '.3f')}×** CPU"


def stage_table(n: int, run: dict) -> list[str]:
    stages = run["stages"]
    lines = [f"## N = {n:,} images", "",
             f"Images: {run['images_mib']:.0f} MiB on disk (the generation step took {run['generate_s']:.0f} s; "
             "it is skipped when the images are already there). "
             f"Shard size {run['options']['shard_size']:,}; loader workers: {run['options']['workers']}.", "",
             "| stage | work (s) | CPU (s) | start-up (s) | process (s) | peak RSS (MiB) | anon (MiB) | images/s "
             "| × forward (wall) | × forward (CPU) | load avg |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if run.get("subset_of"):
        lines.insert(-3, f"\nA **subset run**: {n:,} images drawn (seeded) from the N = {run['subset_of']:,} run, "
                     "with the same rows of its merged features, so only the stages after the features stage ran.")
    forward = stages.get("forward", {})
    if forward.get("estimated_from"):
        wall = (f" and its wall time as N × {forward['work_s'] / n * 1000:.1f} ms" if forward.get("work_s")
                else ", so only CPU ratios are given")
        lines.insert(-3, f"\nThe bare forward pass was **not measured** at this N: its CPU time is estimated as N × "
                     f"the CPU time per image measured at N = {forward['estimated_from']:,} "
                     f"({forward['cpu_s'] / n * 1000:.1f} ms){wall}, on the same machine under the same "
                     "conditions. The forward pass does the same work per image at any N, and image i of this "
                     "run is the same file as image i of that one.")
    for name in STAGES:
        if name not in stages or stages[name].get("estimated_from"):
            continue
        s = stages[name]
        rel = s["work_s"] / forward["work_s"] if forward.get("work_s") else None
        rel_cpu = s["cpu_s"] / forward["cpu_s"] if "cpu_s" in s and "cpu_s" in forward else None
        lines.append(f"| {name} | {s['work_s']:.1f} | {_fmt(s.get('cpu_s'))} | {s['startup_s']:.1f} | "
                     f"{_fmt(s['process_s'])} | {s['peak_rss_mib']:.0f} | {_fmt(s.get('peak_anon_mib'), '.0f')} | "
                     f"{_fmt(s['images_per_s'], '.0f')} | "
                     f"{_fmt(rel, '.3f')} | {_fmt(rel_cpu, '.3f')} | "
                     f"{_fmt(s['load_before'])}→{_fmt(s['load_after'])} |")
    pipeline = [s for s in STAGES if s not in NOT_PIPELINE and s in stages]
    lines += ["", "- features + patches (features, features_merge, patches from maxima) / bare forward: "
              + _ratios(stages, FEATURES_AND_PATCHES),
              "- streaming stages (data, features, features_merge, patches) / bare forward: "
              + _ratios(stages, [s for s in STREAMING if s != "forward"]),
              f"- every stage measured here except the forward reference ({', '.join(pipeline)}) / bare forward: "
              + _ratios(stages, pipeline)]
    if "patches_min" in stages:
        lines.append("- the same without the negative miner's own pass: "
                     + _ratios(stages, [s for s in pipeline if s != "patches_min"]))
    return lines + [""]


def growth(small: dict, large: dict, key: str) -> float | None:
    """The exponent b of cost = a * N^b through two runs' ``key`` (None when a run lacks it)."""
    if key not in small or key not in large or small[key] <= 0 or large[key] <= 0:
        return None
    return math.log(large[key] / small[key]) / math.log(large["images"] / small["images"])


LINEAR = ("data", "forward", "features", "features_merge", "patches", "patches_min")  # same work per image


def predict(runs: dict[int, dict], target: int, key: str = "cpu_s") -> tuple[int, float, dict] | None:
    """Each stage's ``key`` at ``target`` images, from the runs below it: (the run the forward pass is
    scaled from, the forward pass's value, {stage: (fitted, linear, b, runs used)}). Stages that do the
    same work per image keep their ratio to the forward pass in the largest run that measured both
    (load changes CPU time, so the ratio is taken under one load), times the forward pass scaled
    linearly. The others: the growth fitted through the two largest runs that have them, and, as an
    upper estimate, linear growth."""
    forward_runs = [n for n in sorted(runs) if n < target and key in runs[n]["stages"].get("forward", {})
                    and not runs[n]["stages"]["forward"].get("estimated_from")]
    if not forward_runs:
        return None
    base = forward_runs[-1]
    forward = runs[base]["stages"]["forward"][key] * target / base
    predicted = {}
    for name in STAGES:
        have = sorted(n for n in runs if n < target and key in runs[n]["stages"].get(name, {})
                      and not runs[n]["stages"][name].get("estimated_from"))
        if name in LINEAR:
            both = [n for n in have if n in forward_runs]
            if both:
                n = both[-1]
                value = runs[n]["stages"][name][key] / runs[n]["stages"]["forward"][key] * forward
                predicted[name] = (value, value, 1.0, [n])
        elif len(have) >= 2:
            small, large = (runs[n]["stages"][name] for n in have[-2:])
            b = growth(small, large, key)
            scale = target / have[-1]
            predicted[name] = (large[key] * scale**b, large[key] * scale, b, have[-2:])
    return base, forward, predicted


def extrapolation(runs: dict[int, dict], target: int, key: str = "cpu_s") -> list[str]:
    """The table of :func:`predict` at ``target`` images, with its ratios to the forward pass."""
    prediction = predict(runs, target, key)
    if prediction is None:
        return []
    base, forward, predicted = prediction
    lines = [f"## N = {target:,}: extrapolated, not measured", "",
             f"CPU seconds at {target:,} images. The bare forward pass is scaled linearly from N = {base:,}. Stages "
             f"that do the same work per image ({', '.join(LINEAR)}; the merge simulation in scale_merge.md "
             "confirms it for the merges) keep their ratio to the forward pass from the largest run that measured "
             "both (under the same load). The others are scaled by the growth exponent b (cost ∝ N^b) fitted "
             "through the two largest runs that measured them; their small-N costs include fixed overheads, so b "
             "can understate the growth, and the linear column (b = 1) is given as an upper estimate.", "",
             "| stage | from runs | b | CPU s (fitted) | CPU s (linear) | × forward (fitted) | × forward (linear) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name, (fitted, linear, b, used) in predicted.items():
        lines.append(f"| {name} | {', '.join(f'{n:,}' for n in used)} | {b:.2f} | {fitted:,.0f} | {linear:,.0f} | "
                     f"{fitted / forward:.3f} | {linear / forward:.3f} |")
    if all(s in predicted for s in FEATURES_AND_PATCHES):
        fp = sum(predicted[s][0] for s in FEATURES_AND_PATCHES) / forward
        lines += ["", f"- features + patches / bare forward at {target:,}: **{fp:.3f}×**"]
    pipeline = [s for s in predicted if s not in NOT_PIPELINE]
    labels = [("every stage here", pipeline)]
    if "patches_min" in pipeline:
        labels.append(("without the negative miner's pass", [s for s in pipeline if s != "patches_min"]))
    for label, names in labels:
        fitted, linear = (sum(predicted[s][i] for s in names) / forward for i in (0, 1))
        lines.append(f"- {label} / bare forward at {target:,}: **{fitted:.3f}×** (fitted growth) to "
                     f"**{linear:.3f}×** (linear) ({', '.join(names)})")
    return lines + [""]


def extrapolation_check(runs: dict[int, dict], target: int, key: str = "cpu_s") -> list[str]:
    """The extrapolation method tried where the answer is known: each stage at ``target`` predicted
    from the smaller runs only, beside what the run at ``target`` measured."""
    prediction = predict({n: r for n, r in runs.items() if n < target}, target, key)
    if prediction is None or target not in runs:
        return []
    _, _, predicted = prediction
    measured = runs[target]["stages"]
    rows = [name for name in predicted if name not in LINEAR and key in measured.get(name, {})]
    if not rows:
        return []
    lines = [f"## Checking the extrapolation at N = {target:,}", "",
             f"The stages whose cost is not linear in N, predicted at {target:,} images from the smaller runs "
             f"alone (as the table below extrapolates further), beside what the {target:,}-image run measured. "
             "Measured over fitted above 1 means the fitted growth underestimates; the linear column bounds it.",
             "", "| stage | from runs | b | CPU s (fitted) | CPU s (linear) | CPU s (measured) | measured / fitted |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name in rows:
        fitted, linear, b, used = predicted[name]
        lines.append(f"| {name} | {', '.join(f'{n:,}' for n in used)} | {b:.2f} | {fitted:,.0f} | {linear:,.0f} | "
                     f"{measured[name][key]:,.0f} | {measured[name][key] / fitted:.2f} |")
    return lines + [""]


def estimate_forward(runs: dict[int, dict]) -> None:
    """Give a run without a measured forward pass an estimated one, from the per-image CPU and
    wall time of the largest run that measured it (the forward pass does the same work per image;
    the generated images are the same files at every N, image i being image i of a larger run)."""
    measured = [n for n in sorted(runs) if "cpu_s" in runs[n]["stages"].get("forward", {})
                and not runs[n]["stages"]["forward"].get("estimated_from")]
    if not measured:
        return
    base = runs[measured[-1]]["stages"]["forward"]
    for n, run in runs.items():
        if "forward" not in run["stages"]:
            wall = base["work_s"] / base["images"] * n if base.get("work_s") else None
            run["stages"]["forward"] = {"stage": "forward", "images": n, "cpu_s": base["cpu_s"] / base["images"] * n,
                                        "work_s": wall, "estimated_from": measured[-1]}


def write_report(data: dict) -> None:
    runs = {int(n): run for n, run in data["runs"].items()}
    if not runs:
        return
    first = next(iter(runs.values()))["machine"]
    loads = [v for run in runs.values() for stage in run["stages"].values()
             for v in (stage.get("load_before"), stage.get("load_after")) if v is not None]
    lines = ["# Scale benchmark: the image pipeline vs a bare forward pass", "",
             "Written by `benchmarks/scale.py` (raw numbers: `scale.json`). EfficientNet-Lite0 at 160 px, "
             f"layers {', '.join(LAYERS)}, batch {BATCH}, K = {K}, {THREADS} torch threads, CPU.", "",
             f"Machine: {first['cpus']} CPU cores ({first['processor']}, {first['platform']}, "
             f"Python {first['python']}). Load average over all stages: "
             f"{min(loads, default=0):.1f} to {max(loads, default=0):.1f} (before→after each stage, last column; "
             "the benchmark's own torch threads and loader worker make about 2 to 3).",
             "", "Each stage ran in a fresh process. *work* is the stage's own work after imports and model loading "
             "(*start-up*); *process* is the whole process. Peak RSS includes the process's worker processes; "
             "*anon* is the peak anonymous memory (RSS without memory-mapped file pages), what a job really holds. "
             "*× forward* divides the work time (or the CPU time) by the bare forward pass's at the same N.", ""]
    estimate_forward(runs)
    for n in sorted(runs):
        lines += stage_table(n, runs[n])
    largest = max(runs)
    lines += extrapolation_check(runs, largest)
    lines += extrapolation(runs, 1_000_000 if largest >= 100_000 else 100_000)
    (RESULTS / "scale.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--n", type=int, nargs="+", default=[1000, 10000])
    run.add_argument("--stages", nargs="+", default=STAGES, choices=STAGES)
    run.add_argument("--workdir", type=Path, default=Path("/work/scale_bench"))
    run.add_argument("--shard-size", type=int, default=10_000)
    run.add_argument("--workers", type=int, default=None, help="loader worker processes, if the loader takes them")
    run.add_argument("--gen-workers", type=int, default=2)
    stage = sub.add_parser("stage")
    stage.add_argument("name", choices=STAGES)
    stage.add_argument("work", type=Path)
    stage.add_argument("opts")
    sub.add_parser("report")
    part = sub.add_parser("subset")
    part.add_argument("source", type=int)
    part.add_argument("n", type=int)
    part.add_argument("--workdir", type=Path, default=Path("/work/scale_bench"))
    take = sub.add_parser("ingest")
    take.add_argument("n", type=int)
    take.add_argument("name", choices=STAGES)
    take.add_argument("--workdir", type=Path, default=Path("/work/scale_bench"))
    args = parser.parse_args()
    if args.command == "stage":
        run_stage(args.name, args.work, json.loads(args.opts))
    elif args.command == "subset":
        make_subset(args.source, args.n, args.workdir)
    elif args.command == "ingest":
        ingest(args.n, args.name, args.workdir)
    elif args.command == "report":
        write_report(load_json())
    else:
        opts = {"shard_size": args.shard_size, "workers": args.workers}
        benchmark(args.n, args.stages, args.workdir, opts, args.gen_workers)


if __name__ == "__main__":
    main()
