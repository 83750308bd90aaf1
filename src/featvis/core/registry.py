"""The one way users extend featvis: a name -> item table and its ``@register(name)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T], doc: str = "") -> Callable[[str], Callable[[T], T]]:
    """A decorator factory that files the decorated item in ``table`` under a name."""

    def register(name: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            table[name] = item
            return item

        return decorator

    register.__doc__ = doc
    return register
