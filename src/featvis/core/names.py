"""Suggestions for a mistyped name: the closest valid names first, never a list of hundreds."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(name: str, choices: Iterable[str], n: int = 5) -> list[str]:
    """The closest names first (difflib), then those that contain or start like ``name``."""
    choices = list(choices)
    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    near += [c for c in choices if c not in near and (name.lower() in c.lower() or c.lower() in name.lower())]
    return near[:n]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    near = closest(name, choices)
    return f"; did you mean {' or '.join(repr(c) for c in near)}?" if near else ""


def unknown(what: str, name: str, choices: Iterable[str]) -> str:
    """``unknown layer 'conv9' (closest: conv1, conv2; 11 in all)``."""
    choices = list(choices)
    near = closest(name, choices)
    hint = f"closest: {', '.join(near)}; " if near else ""
    return f"unknown {what} {name!r} ({hint}{len(choices)} in all)"
