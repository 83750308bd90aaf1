"""Feature visualization by optimization (Olah, Mordvintsev and Schubert, Distill 2017).

``render(model, objective, seeds, settings)`` optimises a batch of images at once;
objectives, parametrizations, transforms and regularizers are registries to extend.

The names below load on first use, so the workflow's start checks (``render.checks``)
can run without importing torch.
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "objectives": None,
    "RenderResult": "optimize",
    "RenderSettings": "optimize",
    "render": "optimize",
    "PARAMS": "params",
    "make_param": "params",
    "register_param": "params",
    "REGULARIZERS": "regularizers",
    "register_regularizer": "regularizers",
    "TRANSFORMS": "transforms",
    "build_transforms": "transforms",
    "register_transform": "transforms",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'featvis.render' has no attribute {name!r}")
    home = _HOMES[name]
    value = import_module(f"featvis.render.{name}") if home is None else getattr(
        import_module(f"featvis.render.{home}"), name)
    globals()[name] = value
    return value
