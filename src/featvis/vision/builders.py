"""A user's own model class, named in the config: ``builder: package.module:function`` or
``builder: path/to/file.py:function`` (a class or any callable returning an ``nn.Module``).

A file is imported under a fixed module name (``featvis_user.<stem>``) with its folder on
``sys.path``, so its own imports work and the same file is one module in every process.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from featvis.core.names import unknown


class BuilderError(ValueError):
    """A ``builder:`` that cannot be imported or called; the message names the fix."""


def split_reference(reference: str) -> tuple[str, str]:
    """``"where:name"`` into its two parts (``where`` may be a Windows path with a drive colon)."""
    where, sep, name = str(reference).rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise BuilderError(f"builder {reference!r}: expected `package.module:function` or `path/to/file.py:function`")
    return where, name


def builder_file(reference: str | None) -> str | None:
    """The source file a ``builder:`` names (``None`` for a package's function, or none)."""
    if not reference:
        return None
    where = str(reference).rpartition(":")[0]
    return str(Path(where).resolve()) if _is_file(where) and Path(where).is_file() else None


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def import_builder(reference: str) -> tuple[Callable, ModuleType]:
    """The callable a ``builder:`` names, and the module it lives in."""
    where, name = split_reference(reference)
    module = _import_file(where) if _is_file(where) else _import_module(where)
    if not hasattr(module, name):
        public = [n for n in vars(module) if not n.startswith("_") and callable(getattr(module, n))]
        raise BuilderError(f"builder {reference!r}: {unknown('name', name, public)} in {_where(module)}")
    builder = getattr(module, name)
    if not callable(builder):
        raise BuilderError(f"builder {reference!r}: {name} in {_where(module)} is a {type(builder).__name__}, "
                           "not a class or function")
    return builder, module


def _import_file(where: str) -> ModuleType:
    path = Path(where).expanduser()
    if not path.is_file():
        raise BuilderError(f"builder file {where!r} not found (looked at {path.resolve()}); paths are relative to the "
                           "folder snakemake runs in")
    name = f"featvis_user.{path.stem}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path.resolve()):
        return sys.modules[name]
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the file's own imports of its neighbours
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("featvis_user", ModuleType("featvis_user"))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise BuilderError(f"builder file {path}: importing it failed: {type(error).__name__}: {error}") from error
    return module


def _import_module(where: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as error:
        raise BuilderError(f"builder module {where!r} cannot be imported ({error}): install its package, put it "
                           "on PYTHONPATH, or name a file: `builder: path/to/file.py:function`") from None


def _where(module: ModuleType) -> str:
    return getattr(module, "__file__", None) or module.__name__
