"""The layer table of a model: name, type, output shape and receptive field."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from featvis.hooks import layer_names
from featvis.receptive import receptive_fields


def layer_table(model: nn.Module, input_shape: tuple[int, ...]) -> pd.DataFrame:
    """One row per named module that ran, in execution order.

    ``rf_size``/``rf_stride`` are the receptive field's side and step in input pixels;
    ``global`` where every output sees the whole image; empty where the module's output
    is not a tensor.
    """
    names = layer_names(model)
    modules = dict(model.named_modules())
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(_module, _inputs, output) -> None:  # returning a value would replace the output
            if isinstance(output, torch.Tensor) and name not in shapes:
                shapes[name] = tuple(output.shape[1:])

        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in names]
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(input_shape, dtype=param.dtype, device=param.device))
    finally:
        for handle in handles:
            handle.remove()
    ran = list(shapes)
    fields = receptive_fields(model, input_shape, ran)
    rows = []
    for name in ran:
        field = fields[name]
        rows.append({
            "layer": name,
            "type": type(modules[name]).__name__,
            "output_shape": "x".join(map(str, shapes[name])),
            "rf_size": "global" if field is None else "x".join(map(str, field.size)),
            "rf_stride": "" if field is None else "x".join(map(str, field.jump)),
            "rf_offset": "" if field is None else "x".join(map(str, field.lo)),
        })
    return pd.DataFrame(rows)
