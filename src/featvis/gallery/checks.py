"""Start checks for the gallery: every featured unit names a model, a layer with pages, and a
channel within that layer's width, so no link on the index can point at a missing page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featvis.core.config import ConfigError
from featvis.core.names import did_you_mean
from featvis.vision.checks import layer_width


def gallery_layers(config: Mapping[str, Any], model: str) -> list[str]:
    """Layers that get pages: every analysis layer of the model, then render-job layers."""
    layers = [layer for a in config.get("analyses", []) if a["model"] == model for layer in a["layers"]]
    layers += [job["layer"] for job in config.get("render", {}).get("jobs", {}).values()
               if job["model"] == model and not job.get("objectives")]
    return list(dict.fromkeys(layers))


def featured_units(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    return [(m, layer, int(c)) for m, layer, c in (unit.split("/") for unit in config["gallery"]["featured"])]


def check_gallery(config: Mapping[str, Any], structures: Mapping[str, Mapping[str, Any]]) -> None:
    for i, (model, layer, channel) in enumerate(featured_units(config)):
        where = f"gallery.featured[{i}] ({model}/{layer}/{channel})"
        if model not in config.get("models", {}):
            raise ConfigError(f"{where}: unknown model '{model}'{did_you_mean(model, config.get('models', {}))}")
        layers = gallery_layers(config, model)
        if layer not in layers:
            raise ConfigError(f"{where}: layer '{layer}' has no gallery pages{did_you_mean(layer, layers)}. "
                              f"Pages exist for the analysed and rendered layers of {model}: {', '.join(layers)}")
        width = layer_width(structures[model], layer)
        if width is not None and not 0 <= channel < width:
            raise ConfigError(f"{where}: channel {channel} is out of range: {model} {layer} has {width} "
                              f"channels (valid: 0..{width - 1})")

