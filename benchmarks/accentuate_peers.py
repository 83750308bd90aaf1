"""Feature accentuation: featvis against Horama's ``accentuation`` (Fel et al.; after Hamblin et al. 2024)
on the same model, units and seed photos.

Model: EfficientNet-Lite0 (ImageNet weights, offline), layer ``_blocks.10``, channels 0-2, each unit's
3 best photos among the bundled ones (benchmarks/accent_seeds.py), at 160 px, the model's input here.
Every result is measured the same way, on the whole image as the model sees it, with no transforms:

- *before* / *after*: the unit's activation at the position where the seed excites it most (the
  position the patches stage ranks by), and *gain* = after / before;
- *channel max gain*: the same for the unit's maximum over all positions (what a channel objective,
  such as Horama's, raises);
- *distance*: root mean squared pixel change from the seed, pixels in [0, 1];
- *time*: wall time for all items (featvis: one batch; Horama: one call per item, as its API takes one image).

Horama's ``accentuation`` optimises a Fourier spectrum (NAdam, lr 1.0) through 6 random crops per step
with noise, and its objective here is the unit's mean over each crop's grid (a fixed position does not
survive its crops). It feeds the model values in ``values_range`` (-2.5, 2.5); the wrapper maps them back to
pixels and applies the model's own normalisation, so both tools see the same model on the same pixels.
Horama rescales the seed to [0, 1] by its minimum and maximum first, so every seed here is rescaled that way
beforehand, for both tools: both start from the same pixels.

Run: ``python benchmarks/accentuate_peers.py [--steps 16] [--out benchmarks/results/accentuate_peers.md]``
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see render_vs_lucent.py: busy-waiting on a shared machine

import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accent_seeds import top_seeds  # noqa: E402

from featvis.core.hooks import capture, run_to_layers  # noqa: E402
from featvis.render.accentuate import AccentSettings, Target, accentuate  # noqa: E402
from featvis.vision.models import load_model  # noqa: E402

LAYER, CHANNELS, PATCHES, INPUT = "_blocks.10", [0, 1, 2], 3, 160
VALUES_RANGE = (-2.5, 2.5)


class Measure:
    """The unit's activation at its position and its maximum, on whole images in [0, 1]."""

    def __init__(self, model: torch.nn.Module, mean, std) -> None:
        self.model = model
        self.mean, self.std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    @torch.no_grad()
    def __call__(self, targets: list[Target], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) - self.mean) / self.std
        with capture(self.model, [LAYER], stop_early=True) as acts:
            run_to_layers(self.model, x, acts)
            act = acts[LAYER]
        at = np.array([float(act[i, t.channel, t.y, t.x]) for i, t in enumerate(targets)])
        peak = np.array([float(act[i, t.channel].max()) for i, t in enumerate(targets)])
        return at, peak


def horama_run(model, mean, std, targets, seeds, steps, box_size):
    from horama import accentuation

    mean_t, std_t = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    out = []
    for target, seed in zip(targets, seeds, strict=True):
        def objective(images, channel=target.channel):
            pixels = (images - VALUES_RANGE[0]) / (VALUES_RANGE[1] - VALUES_RANGE[0])
            with capture(model, [LAYER], detach=False, stop_early=True) as acts:
                run_to_layers(model, (pixels - mean_t) / std_t, acts)
                return acts[LAYER][:, channel].mean()

        image, _ = accentuation(objective, torch.tensor(seed).permute(2, 0, 1), total_steps=steps,
                                image_size=INPUT, model_input_size=INPUT, values_range=VALUES_RANGE,
                                box_size=box_size, device="cpu")
        pixels = (image.detach() - VALUES_RANGE[0]) / (VALUES_RANGE[1] - VALUES_RANGE[0])
        out.append(pixels.permute(1, 2, 0).numpy())
    return np.stack(out)


def summary(name, measure, targets, seeds, images, seconds):
    before, before_peak = measure(targets, seeds)
    after, after_peak = measure(targets, images)
    distance = np.sqrt(np.square(images - seeds).reshape(len(seeds), -1).mean(1))
    return (f"| {name} | {np.median(after / before):.2f} ({np.min(after / before):.2f}-{np.max(after / before):.2f}) "
            f"| {np.median(after_peak / before_peak):.2f} | {100 * np.median(distance):.1f} "
            f"({100 * distance.min():.1f}-{100 * distance.max():.1f}) | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--horama-steps", type=int, nargs="*", default=[],
                        help="also run Horama (default crops) for these step counts")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/accentuate_peers.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("efficientnet_lite0", "efficientnet_lite0")
    model, pre = loaded.module.eval(), loaded.preprocess
    for p in model.parameters():
        p.requires_grad_(False)
    targets, seeds = top_seeds(model, LAYER, CHANNELS, PATCHES, pre.mean, pre.std, INPUT)
    low, high = seeds.min((1, 2, 3), keepdims=True), seeds.max((1, 2, 3), keepdims=True)
    seeds = ((seeds - low) / (high - low)).astype(np.float32)  # what Horama does to its seed
    measure = Measure(model, pre.mean, pre.std)
    rows = []
    for pull in (1000.0, 0.0):
        settings = AccentSettings(steps=args.steps, pull=pull, mean=pre.mean, std=pre.std)
        start = time.perf_counter()
        result = accentuate(model, LAYER, targets, seeds, settings)
        rows.append(summary(f"featvis, {args.steps} steps, pull {pull:g}{' (default)' if pull == 1000 else ''}, "
                            "one batch", measure,
                            targets, seeds, result.images, time.perf_counter() - start))
    runs = [(args.steps, (0.20, 0.25)), (args.steps, (0.9, 1.0))] + [(n, (0.20, 0.25)) for n in args.horama_steps]
    for steps, box in runs:
        start = time.perf_counter()
        images = horama_run(model, pre.mean, pre.std, targets, seeds, steps, box)
        what = "default crops (25-30% of the image)" if box[0] == 0.2 else "crops of 100-110% of the image"
        rows.append(summary(f"horama {version('horama')}, {steps} steps, penalty 1, {what}, one call per item",
                            measure, targets, seeds, images, time.perf_counter() - start))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "# Feature accentuation: featvis against Horama",
        "",
        f"`python benchmarks/accentuate_peers.py --steps {args.steps}` ({platform.machine()} CPU, torch "
        f"{torch.__version__}, {args.threads} threads, load average {load:.1f} at the end). EfficientNet-Lite0 "
        f"`{LAYER}`, channels {CHANNELS}, each with its {PATCHES} best bundled photos at {INPUT} px: "
        f"{len(targets)} accentuations, {args.steps} steps each. Medians (range) over the items.",
        "",
        "| run | gain at the unit's position | gain of the channel maximum | change, RMS % of the range "
        "| time (s) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Reading: *gain* is after / before at the unit's top position (the number the gallery shows); *change* "
        "is the root mean squared pixel change from the seed. Horama's `accentuation` is built for long runs "
        "(its default is 1000 steps, NAdam at lr 1.0, on 1280 px images seen through small random crops), so "
        "at a render-sized step budget it barely moves the image; the extra rows give it more steps. It takes "
        "one image per call; featvis accentuates every item in one batch. faccent 1.0.3 (Hamblin et al.'s own "
        "package) is not compared: its `render_vis` balances an L2 pull in a chosen layer's feature space by "
        "gradient ratios and runs 16 transforms per step, which needs a separate adapter; left for later.",
        "",
    ])
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
