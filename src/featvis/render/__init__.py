"""Feature visualization by optimization (Olah, Mordvintsev and Schubert, Distill 2017).

``render(model, objective, seeds, settings)`` optimises a batch of images at once;
objectives, parametrizations, transforms and regularizers are registries to extend.
"""

from featvis.render import objectives
from featvis.render.optimize import RenderResult, RenderSettings, render
from featvis.render.params import PARAMS, make_param, register_param
from featvis.render.regularizers import REGULARIZERS, register_regularizer
from featvis.render.transforms import TRANSFORMS, build_transforms, register_transform

__all__ = [
    "PARAMS",
    "REGULARIZERS",
    "TRANSFORMS",
    "RenderResult",
    "RenderSettings",
    "build_transforms",
    "make_param",
    "objectives",
    "register_param",
    "register_regularizer",
    "register_transform",
    "render",
]
