"""Renders per minute: featvis.render against torch-lucent's render_vis, side by side.

Same model (EfficientNet-Lite0, ImageNet weights), same objectives (mean activation
of channels 0..7 of ``_blocks.10``), same steps (64), same image size (128 px), the
same Fourier + decorrelated-colour parametrization, Adam at lr 0.05 and the Distill
transform recipe in both. Configurations run interleaved, round after round, so
background load hits all of them alike; the table reports the best round and the median.

lucent's render_vis upsamples images smaller than 224 px to 224 before the model
unless ``fixed_image_size`` is given, so both are measured at both model input sizes.

Run: ``python benchmarks/render_vs_lucent.py [--rounds 2] [--out benchmarks/results/render_vs_lucent.md]``
"""

from __future__ import annotations

import argparse
import os

# Both tools share this process. Under other load, OpenMP's default busy-waiting makes each
# parallel region spin against the other processes (10-20x slower steps seen on a shared
# 2-core machine), so threads sleep when idle; set OMP_WAIT_POLICY yourself to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from featvis.core.device import pick_device  # noqa: E402
from featvis.core.hooks import capture, run_to_layers  # noqa: E402
from featvis.render import RenderSettings, render  # noqa: E402
from featvis.render import objectives as obj  # noqa: E402
from featvis.render.fuse import prepare_model  # noqa: E402
from featvis.render.params import make_param  # noqa: E402
from featvis.render.transforms import ItemRng, Resize, build_transforms  # noqa: E402
from featvis.vision.models import load_model  # noqa: E402

LAYER, CHANNELS, STEPS, SIZE = "_blocks.10", list(range(8)), 64, 128
LUCENT_128 = "lucent, 8 channels batched, model sees 128 (fixed_image_size=128)"
FEATVIS_128 = "featvis, 8 channels batched, model sees 128 (input_size=128)"
LUCENT_224 = "lucent, 8 channels batched, model sees 224 (render_vis default)"
FEATVIS_224 = "featvis, 8 channels batched, model sees 224 (input_size=224)"
FEATVIS_140 = "featvis, 8 channels batched, model sees 140 (transformed canvas, no resize)"
LUCENT_ONE = "lucent, 1 channel per call, model sees 224 (render_vis default)"
FEATVIS_ONE = "featvis, 1 channel per call, model sees 224"


def lucent_job(model: torch.nn.Module, channels: list[int], fixed: int | None, device: str) -> Callable:
    from lucent.optvis import objectives, param, render

    lucent_layer = LAYER.replace(".", "_")

    def run() -> None:
        objective = sum(objectives.channel(lucent_layer, c, batch=i) for i, c in enumerate(channels))
        render.render_vis(model, objective, lambda: param.image(SIZE, batch=len(channels)),
                          thresholds=(STEPS,), show_image=False, progress=False, fixed_image_size=fixed)

    return run


def featvis_job(model: torch.nn.Module, channels: list[int], input_size: int | None, device: str) -> Callable:
    settings = RenderSettings(size=SIZE, steps=STEPS, input_size=input_size)

    def run() -> None:
        render(model, obj.channel(LAYER, channels), list(range(len(channels))), settings, device=device)

    return run


def per_call(make: Callable, model: torch.nn.Module, option: int | None, device: str) -> Callable:
    """One render call per channel, as a user looping over channels would do."""
    jobs = [make(model, [c], option, device) for c in CHANNELS]

    def run() -> None:
        for job in jobs:
            job()

    return run


def step_overhead(model: torch.nn.Module, input_size: int | None, device: str, repeats: int = 15) -> dict:
    """Median ms per step of (parametrization + transforms) and of (model forward + backward)."""
    net = prepare_model(model, keep=[LAYER])
    param = make_param("fourier", list(range(8)), SIZE).to(device)
    transforms = build_transforms("standard")
    rng = ItemRng(list(range(8)))
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).reshape(1, 3, 1, 1)

    if input_size:  # as render() does: the resize joins the fused resampling
        transforms.transforms.append(Resize(input_size))

    def front() -> torch.Tensor:
        return transforms(param(), rng, post=(1 / std, -mean / std))  # as render() does

    shape = front().shape
    fixed = torch.randn(shape, device=device, requires_grad=True)
    grad = torch.randn(shape, device=device)

    def timed(fn: Callable) -> float:
        times = []
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    def model_step() -> None:
        with capture(net, [LAYER], detach=False, stop_early=True) as acts:
            run_to_layers(net, fixed, acts)
            acts[LAYER][:, :8].mean().backward()

    def front_step() -> None:
        front().backward(grad)

    model_ms, front_ms = timed(model_step), timed(front_step)
    return {"model_ms": model_ms, "front_ms": front_ms, "ratio": front_ms / model_ms, "shape": tuple(shape)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="benchmarks/results/render_vs_lucent.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = str(pick_device(args.device))
    model = load_model("efficientnet_lite0").module.to(device).eval()
    lucent_model = load_model("efficientnet_lite0").module.to(device).eval()  # as render_vis users run it

    configs = {
        LUCENT_128: (lucent_job(lucent_model, CHANNELS, SIZE, device), 8),
        FEATVIS_128: (featvis_job(model, CHANNELS, SIZE, device), 8),
        LUCENT_224: (lucent_job(lucent_model, CHANNELS, None, device), 8),
        FEATVIS_224: (featvis_job(model, CHANNELS, 224, device), 8),
        FEATVIS_140: (featvis_job(model, CHANNELS, None, device), 8),
        LUCENT_ONE: (per_call(lucent_job, lucent_model, None, device), 8),
        FEATVIS_ONE: (per_call(featvis_job, model, 224, device), 8),
    }
    featvis_job(model, CHANNELS, SIZE, device)()  # first-call costs (model preparation) out of the timing
    lucent_job(lucent_model, CHANNELS, SIZE, device)()
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    for round_ in range(args.rounds):
        for name, (job, _) in configs.items():
            start = time.perf_counter()
            job()
            _sync(device)
            seconds[name].append(time.perf_counter() - start)
            print(f"round {round_}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    load_after = os.getloadavg()
    overhead = {size: step_overhead(model, size, device) for size in (SIZE, None)}
    write_report(Path(args.out), configs, seconds, overhead, device, args, load_before, load_after)


def write_report(path: Path, configs: dict, seconds: dict, overhead: dict, device: str, args,
                 load_before: tuple, load_after: tuple) -> None:
    rate = {name: configs[name][1] * 60 / min(times) for name, times in seconds.items()}
    median = {name: configs[name][1] * 60 / statistics.median(times) for name, times in seconds.items()}
    lines = [
        "# featvis.render vs torch-lucent render_vis",
        "",
        f"EfficientNet-Lite0 `{LAYER}`, channels 0-7 (mean activation), {STEPS} Adam steps (lr 0.05), "
        f"{SIZE} px Fourier + decorrelated-colour image, Distill transforms (pad 12, jitter 8, scale, "
        f"rotate, jitter 4). Device: {device}, torch {torch.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}, {args.rounds} interleaved rounds, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}. "
        f"Load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (shared machine).",
        "",
        "| configuration | renders/min (best round) | renders/min (median) | seconds per round |",
        "|---|---:|---:|---|",
    ]
    for name, times in seconds.items():
        lines.append(f"| {name} | {rate[name]:.1f} | {median[name]:.1f} | "
                     + ", ".join(f"{t:.1f}" for t in times) + " |")
    pairs = [
        ("featvis batched vs lucent batched, both at 128", FEATVIS_128, LUCENT_128),
        ("featvis batched vs lucent batched, both at 224", FEATVIS_224, LUCENT_224),
        ("featvis 1 per call vs lucent 1 per call, both at 224", FEATVIS_ONE, LUCENT_ONE),
        ("featvis batched at 128 vs lucent 1 per call at 224 (each tool's plain use)", FEATVIS_128, LUCENT_ONE),
    ]
    lines += ["", "| speed-up (best rounds) | x |", "|---|---:|"]
    lines += [f"| {label} | {rate[a] / rate[b]:.2f} |" for label, a, b in pairs]
    lines += ["", "Per-step overhead of parametrization + transforms (forward + backward) against the "
              "model's forward + backward to the layer (batch 8, median of 15):", "",
              "| model input | input shape | param + transforms ms | model ms | overhead |",
              "|---|---|---:|---:|---:|"]
    for size, o in overhead.items():
        lines.append(f"| {size or 'no resize'} | {o['shape']} | {o['front_ms']:.1f} | {o['model_ms']:.1f} | "
                     f"{100 * o['ratio']:.1f}% |")
    lines += ["", "Where the speed comes from: one batch for all channels; the forward stops after the "
              "deepest layer an objective reads; the render copy of the model has frozen weights (no weight "
              "gradients; render_vis leaves them on unless the caller turns them off) and BatchNorm folded "
              "into the convolutions; channels-last memory layout; the five geometric transforms fused into "
              "one grid_sample per step.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
