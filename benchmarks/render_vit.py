"""Renders per minute: a vision transformer (timm ViT-Tiny) against EfficientNet-Lite0.

Same render for both: 8 channels of a middle layer batched in one optimisation, a 128 px
Fourier image with decorrelated colour and the standard transforms, resampled to the model's
224 px input, 64 Adam steps. ViT-Tiny objectives act on the token grid (``blocks.6``, 14 x 14
patch tokens), EfficientNet-Lite0's on ``_blocks.10``; each forward pass stops at the layer.
ViT-Tiny has random weights here (none can be downloaded on these machines): the time per step
does not depend on the weights' values. Models run interleaved, round after round, so background
load hits both alike; the table gives the best round and the median.

Run: ``python benchmarks/render_vit.py [--rounds 2] [--steps 64] [--out benchmarks/results/render_vit.md]``
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see render_vs_lucent.py: no spinning under shared load

import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from featvis.core.device import pick_device  # noqa: E402
from featvis.render import RenderSettings  # noqa: E402
from featvis.render.recipes import render_channels  # noqa: E402
from featvis.vision.models import load_model  # noqa: E402

CHANNELS, SIZE, INPUT = list(range(8)), 128, 224
MODELS = {
    "ViT-Tiny (timm, blocks.6, 14x14 tokens)": ({"architecture": "timm:vit_tiny_patch16_224", "allow_random": True},
                                                "blocks.6"),
    "EfficientNet-Lite0 (_blocks.10)": ({"architecture": "efficientnet_lite0"}, "_blocks.10"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/results/render_vit.md")
    args = parser.parse_args()
    device = pick_device("auto")
    torch.manual_seed(0)
    loaded = {name: (load_model(spec), layer) for name, (spec, layer) in MODELS.items()}
    times: dict[str, list[float]] = {name: [] for name in MODELS}
    for _ in range(args.rounds):
        for name, (model, layer) in loaded.items():
            pre = model.preprocess
            settings = RenderSettings(size=SIZE, steps=args.steps, input_size=INPUT, mean=pre.mean, std=pre.std,
                                      snapshots=())
            render_channels(model.module, layer, CHANNELS[:1], settings.replace(steps=2), seed=0, device=str(device))
            start = time.perf_counter()
            render_channels(model.module, layer, CHANNELS, settings, seed=0, device=str(device))
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    lines = [
        "# Renders per minute: ViT-Tiny vs EfficientNet-Lite0",
        "",
        f"{len(CHANNELS)} channels batched, {SIZE} px Fourier image, standard transforms, resampled to {INPUT} px, "
        f"{args.steps} steps, {args.rounds} interleaved rounds; device {device}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}.",
        "",
        "| model | best s | median s | renders/min (best) |",
        "|---|---|---|---|",
    ]
    for name, values in times.items():
        best = min(values)
        lines.append(f"| {name} | {best:.1f} | {statistics.median(values):.1f} | {60 * len(CHANNELS) / best:.1f} |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
