"""A layer's concept outputs from its merged codes: the quality record, and per live concept its
top patches, heatmap, render and caption (the unit tree: ``units/<model>/<layer>/concepts/<method>/``).

A concept that never fires on the dataset is dead: counted in the quality record, given no files.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from featvis.concepts.figures import heatmap_overlay
from featvis.concepts.methods import Dictionary
from featvis.concepts.quality import HOW_TO_READ, CodeStats, top_classes, top_loadings
from featvis.concepts.stream import codes_map
from featvis.core.hooks import capture, run_to_layers
from featvis.core.units import strip, write_unit_image
from featvis.vision.data import model_image, to_tensor
from featvis.vision.patches import describe_field, topk_patches, unit_strip

log = logging.getLogger(__name__)


def quality_record(method: str, fit: Mapping[str, Any], stats: CodeStats) -> dict[str, Any]:
    """The numbers of one method on one layer, each with how to read it."""
    if stats.positions and float(stats.sum_x2.sum()) == 0.0:
        log.warning("every activation of this layer is zero on the dataset: its concepts mean nothing")
    frequency = stats.frequency()
    dead = stats.dead()
    return {
        "method": method, "n_concepts": int(len(frequency)), "positions_encoded": int(stats.positions),
        "r2": stats.r2(), "l0": stats.l0(), "dead": dead.tolist(), "dead_fraction": len(dead) / max(len(frequency), 1),
        "stability": fit["stability"], "stability_per_concept": fit["stability_per_concept"],
        "frequency": np.round(frequency, 6).tolist(), "sample": fit["sample"],
        "all_zero": bool(stats.positions and float(stats.sum_x2.sum()) == 0.0), "how_to_read": HOW_TO_READ,
    }


def live_concepts(record: Mapping[str, Any]) -> list[int]:
    dead = set(record["dead"])
    return [c for c in range(record["n_concepts"]) if c not in dead]


@torch.no_grad()
def heatmaps(model, layer: str, dictionary: Dictionary, topk: Mapping[str, np.ndarray], concepts: Sequence[int],
             paths: Sequence[str], n_images: int) -> dict[int, np.ndarray]:
    """Per concept, a strip of its first ``n_images`` top images with its code map over each (one
    forward pass over the images they need)."""
    if n_images == 0 or not concepts:
        return {}
    wanted = sorted({int(i) for c in concepts for i in topk["image"][c][:n_images]})
    images = {i: model_image(paths[i], model.preprocess) for i in wanted}
    with capture(model.module, [layer], stop_early=True) as outputs:
        run_to_layers(model.module, to_tensor([images[i] for i in wanted], model.preprocess), outputs)
        codes = codes_map(dictionary, outputs[layer].float())
    row = {i: n for n, i in enumerate(wanted)}
    out = {}
    for c in concepts:
        ids = [int(i) for i in topk["image"][c][:n_images]]
        maps = [codes[row[i], c].numpy() if codes.ndim == 4 else np.full((1, 1), float(codes[row[i], c]))
                for i in ids]
        vmax = max(float(m.max()) for m in maps)
        out[c] = strip([heatmap_overlay(np.asarray(images[i]), m, vmax) for i, m in zip(ids, maps)])
    return out


def write_concepts(folder, record: Mapping[str, Any], dictionary: Dictionary, topk: Mapping[str, np.ndarray],
                   field, paths: Sequence[str], labels: Sequence[str], class_names: Sequence[str],
                   presence: np.ndarray, image_size, channels: int, view: tuple[str, float],
                   heat: Mapping[int, np.ndarray], renders: Mapping[int, np.ndarray], units_shown: int) -> int:
    """Every live concept's files; returns how many were written."""
    concepts = live_concepts(record)
    patches = topk_patches(topk, field, paths, tuple(image_size), channels, concepts, *view)
    atoms = dictionary.atoms.numpy()
    for c, row in zip(concepts, patches):
        values = topk["value"][c]
        shown = [i for i, v in enumerate(values) if v > 0]  # images where the concept does fire
        ids = [int(topk["image"][c][i]) for i in shown]
        caption = {
            "title": f"{len(shown)} images where concept {c} is strongest", "field": describe_field(field),
            "values": [round(float(values[i]), 6) for i in shown], "labels": [str(labels[i]) for i in ids],
            "images": [str(paths[i]) for i in ids], "frequency": record["frequency"][c],
            "stability": record["stability_per_concept"][c],
            "units": [[u, round(w, 6)] for u, w in top_loadings(atoms[c], units_shown)],
            "classes": [[name, round(v, 4)] for name, v in top_classes(presence, c, class_names)],
        }
        write_unit_image(folder, c, "patches", unit_strip([row[i] for i in shown]), caption, "jpg")
        if c in heat:
            write_unit_image(folder, c, "heatmap", heat[c], {"title": "the concept's code over its top images "
                                                                      "(bilinearly upsampled; one colour scale)"},
                             "jpg")
        if c in renders:
            write_unit_image(folder, c, "render", renders[c], {"title": "render of the concept direction "
                                                                        "(direction objective)"})
    return len(concepts)
