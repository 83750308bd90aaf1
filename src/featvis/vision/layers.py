"""The layer table of a model: name, type, output shape and receptive field."""

from __future__ import annotations

import pandas as pd
from torch import nn

from featvis.core.hooks import execution_order
from featvis.core.tokens import token_grid
from featvis.vision.receptive import ReceptiveFields


def layer_table(model: nn.Module, input_shape: tuple[int, ...], traced: ReceptiveFields | None = None) -> pd.DataFrame:
    """One row per named module that ran, in execution order.

    ``rf_size``/``rf_stride`` are the receptive field's side and step in input pixels;
    ``global`` where every output sees the whole image; empty where the module's output
    is not a tensor. ``rf_kind``: ``exact``, ``local`` (squeeze-excitation and other global
    gates taken as per-channel scales), ``token`` or ``global``; ``rf_note`` says why a field is
    not exact (the gates, or the op that makes it global). ``token_grid``: a transformer layer's
    patch grid, ``HxW+prefix`` (class and register tokens), whose output shape is that of its
    spatial map. ``traced``: a trace of ``model`` at ``input_shape`` covering every module that
    runs, to share one trace with the cached fields; traced here if omitted.
    """
    modules = dict(model.named_modules())
    shapes = {name: shape for name, shape in execution_order(model, input_shape).items() if shape is not None}
    ran = list(shapes)
    traced = traced if traced is not None else ReceptiveFields(model, input_shape, ran)
    missing = [name for name in ran if name not in traced.layer_node]
    if missing:  # an untraced module would read as a global field
        raise ValueError(f"the trace does not cover {', '.join(missing)}")
    rows = []
    for name in ran:
        field = traced.field(name)
        rows.append({
            "layer": name,
            "type": type(modules[name]).__name__,
            "output_shape": "x".join(map(str, shapes[name])),
            "rf_size": "global" if field is None else "x".join(map(str, field.size)),
            "rf_stride": "" if field is None else "x".join(map(str, field.jump)),
            "rf_offset": "" if field is None else "x".join(map(str, field.lo)),
            "rf_kind": traced.kind(name),
            "rf_note": traced.reason(name),
            "token_grid": grid.describe() if (grid := token_grid(modules[name])) is not None else "",
        })
    return pd.DataFrame(rows)
