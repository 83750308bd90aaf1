"""The path check's threshold: scores of every unit of the known-answer model, honest and fooled.

The model of tests/test_trust_path.py (a small CNN trained for 40 steps on crops of six
scikit-image photos) has 32 units in its analysed layer. Each unit is rendered twice: in the
model as it is (honest), and with the fooling circuit on that unit (fooled: a naturalness gate
routes the unit to a checkerboard detector, leaving natural images unchanged). Both renders get
the path check (top-8 against bottom-8 of the 95 crops). The table gives every score, and how
many of the 64 each threshold would misclassify. One thread, about 20 s.
Run: `PYTHONPATH=src:tests python benchmarks/trust_threshold.py`; writes
benchmarks/results/trust_threshold.md.
"""

from __future__ import annotations

import copy
import statistics
import sys
from pathlib import Path

import torch

import test_trust_path as known
from featvis.render import RenderSettings, render
from featvis.render import objectives as obj
from featvis.render.transforms import standard_transforms
from featvis.trust import path

OUT = Path(__file__).parent / "results" / "trust_threshold.md"
SEED = 1


def scores() -> tuple[list[float | None], list[float | None]]:
    images, labels = known.photo_crops()
    base = known.trained_net(images, labels)
    settings = RenderSettings(size=known.SIZE, steps=128, mean=known.MEAN, std=known.STD,
                              transforms=standard_transforms(known.SIZE))
    units = list(range(32))
    honest_renders = render(base, obj.channel("unit", units), seeds=[SEED + c for c in units], settings=settings)
    honest = [known.run_check(base, images, c, honest_renders.images[c]).score for c in units]
    fooled = []
    for c in units:
        model = copy.deepcopy(base)
        model.unit.circuit, model.unit.channel = known.FoolingCircuit(known.circuit_gain(base, images)), c
        result = render(model, obj.channel("unit", [c]), seeds=[SEED + c], settings=settings)
        fooled.append(known.run_check(model, images, c, result.images[0]).score)
    return honest, fooled


def report(honest: list[float | None], fooled: list[float | None]) -> str:
    cell = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    rows = [f"| {c} | {cell(h)} | {cell(f)} |" for c, (h, f) in enumerate(zip(honest, fooled))]
    h = [v for v in honest if v is not None]
    f = [v for v in fooled if v is not None]
    errors = [f"| {t:.2f} | {sum(v < t for v in h)} | {sum(v >= t for v in f)} |"
              for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
    return "\n".join([
        "# Path check threshold (benchmarks/trust_threshold.py)", "",
        f"Threshold in use: {path.THRESHOLD}. Median score: honest {statistics.median(h):.2f}, "
        f"fooled {statistics.median(f):.2f}.", "",
        "| threshold | honest below | fooled at or above |", "|---|---|---|", *errors, "",
        "| unit | honest | fooled |", "|---|---|---|", *rows, ""])


def main() -> None:
    torch.set_num_threads(1)
    text = report(*scores())
    OUT.write_text(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
