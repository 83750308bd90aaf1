"""Write a layer's accentuations: per unit, each seed patch and its accentuation as unit pictures
(featvis.core.units), and one JSON and one ``.npz`` per layer with every number and image."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from featvis.core.io import save_npz, write_json
from featvis.core.units import write_unit_image
from featvis.render.accentuate import Accentuation, Target
from featvis.render.export import to_uint8
from featvis.vision.patches import cut_patch, describe_field, unit_strip
from featvis.vision.receptive import LayerField

ACCENT_KIND = "accent"  # <cccc>.accent<k>.png: the k-th top image, accentuated, cut at the receptive field
SEED_KIND = "seed"  # <cccc>.seed<k>.png: the same cut of the natural image it started from


def accent_items(result: Accentuation, targets: Sequence[Target], rows: Sequence[int], paths: Sequence[str],
                 labels: Sequence[str]) -> list[dict[str, Any]]:
    """One record per accentuation: unit, rank, image, position, activation before and after, distance."""
    items = []
    for i, t in enumerate(targets):
        before, after = float(result.before[i]), float(result.after[i])
        items.append({
            "channel": t.channel, "rank": t.rank, "y": t.y, "x": t.x, "image": str(paths[rows[i]]),
            "label": str(labels[rows[i]]), "before": before, "after": after,
            "gain": after / before if before > 0 else None, "distance": float(result.distance[i]),
        })
    return items


def save_accentuations(result: Accentuation, targets: Sequence[Target], items: Sequence[Mapping[str, Any]],
                       field: LayerField | None, units: str | os.PathLike, table: str | os.PathLike,
                       arrays: str | os.PathLike, extra: Mapping[str, Any]) -> list[Path]:
    """Unit pictures ``<cccc>.seed<k>.png`` / ``<cccc>.accent<k>.png`` (the receptive field of the unit's
    position, cut from the seed and from its accentuation, scaled like the patch strips), the accent's
    caption holding its numbers; ``table`` (JSON) and ``arrays`` (images, seeds, transparency)."""
    where = describe_field(field)
    written = []
    for i, (t, item) in enumerate(zip(targets, items, strict=True)):
        seed = cut_patch(to_uint8(result.seeds[i]), field, t.y, t.x)
        accent = cut_patch(to_uint8(result.images[i]), field, t.y, t.x)
        written.append(write_unit_image(units, t.channel, f"{SEED_KIND}{t.rank}", unit_strip([seed])))
        caption = {"title": f"accentuation of top image {t.rank + 1}", "field": where, **item}
        written.append(write_unit_image(units, t.channel, f"{ACCENT_KIND}{t.rank}", unit_strip([accent]), caption))
    write_json(table, {**extra, "field": where, "items": list(items)})
    save_npz(arrays, images=result.images, seeds=result.seeds, transparency=result.transparency,
             before=result.before, after=result.after, distance=result.distance,
             channel=np.asarray([t.channel for t in targets]), rank=np.asarray([t.rank for t in targets]))
    return written
