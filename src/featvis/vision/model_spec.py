"""What a model spec says before anything is built: stand-ins and the errors of an unknown model.

A model spec is a mapping (from the config) with ``architecture`` and, optionally, ``weights``,
``num_classes``, ``image_size``, ``channels``, ``mean``, ``std``, ``class_names``, ``builder``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

STAND_IN = "random"  # `weights: random`: the architecture with random weights, for testing only
STAND_IN_SEED = 0  # stand-ins are the same in every process (each job builds its own)


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class InputSizeError(ValueError):
    """The model's forward pass fails at the configured input size or channel count."""


def is_stand_in(spec: Mapping[str, Any]) -> bool:
    """``weights: random``: build the architecture with seeded random weights (testing only)."""
    return spec.get("weights") == STAND_IN

