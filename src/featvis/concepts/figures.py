"""Pictures of one concept: its heatmap over images (the code map upsampled onto the image)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps

HEAT_ALPHA = 0.55


def heatmap_overlay(image: np.ndarray, heat: np.ndarray, vmax: float) -> np.ndarray:
    """The (h, w) code map, bilinearly upsampled to the (H, W[, 3]) uint8 image and blended over it
    (colour: magma, from 0 to ``vmax``, so one concept's images share a scale)."""
    height, width = image.shape[:2]
    up = F.interpolate(torch.as_tensor(heat, dtype=torch.float32)[None, None], size=(height, width),
                       mode="bilinear", align_corners=False)[0, 0].numpy()
    colour = colormaps["magma"](np.clip(up / max(vmax, 1e-12), 0, 1))[..., :3] * 255
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    blended = (1 - HEAT_ALPHA) * rgb[..., :3].astype(np.float32) + HEAT_ALPHA * colour
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
