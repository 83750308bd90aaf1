"""Seeds shared by the accentuation benchmarks: each unit's top photos among the natural photos that
ship with scikit-image and scikit-learn, at the model's input size, with the unit's best position.

The pipeline takes a unit's top images from the patches stage of a whole dataset; here the pool is
the 7 bundled photos, so that the benchmarks need no pipeline run. What is timed and compared does
not depend on where the seeds come from.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from featvis.core.hooks import capture, run_to_layers
from featvis.render.accentuate import Target
from featvis.render.params import bundled_photos


def photo_pool(size: int) -> np.ndarray:
    """The bundled photos centre-cropped and resized to ``size``, (N, size, size, 3) in [0, 1]."""
    out = []
    for photo in bundled_photos():
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        square = Image.fromarray(photo[top:top + side, left:left + side])
        out.append(np.asarray(square.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0)
    return np.stack(out)


@torch.no_grad()
def top_seeds(model: torch.nn.Module, layer: str, channels: list[int], patches: int, mean, std,
              size: int) -> tuple[list[Target], np.ndarray]:
    """For each channel, its ``patches`` best photos of the pool (by the channel's maximum), each with
    the position of that maximum: targets and their seed images."""
    pool = photo_pool(size)
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    x = (torch.tensor(pool).permute(0, 3, 1, 2) - mean) / std
    with capture(model.eval(), [layer], stop_early=True) as acts:
        run_to_layers(model, x, acts)
        act = acts[layer]
    targets, seeds = [], []
    for c in channels:
        flat = act[:, c].flatten(1)
        best = flat.max(1).values.argsort(descending=True)[:patches]
        for rank, i in enumerate(best.tolist()):
            y, xx = divmod(int(flat[i].argmax()), act.shape[-1])
            targets.append(Target(int(c), y, xx, rank))
            seeds.append(pool[i])
    return targets, np.stack(seeds)
