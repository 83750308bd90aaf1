"""Activation capture over named modules, released by a context manager."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from featvis.core.names import unknown
from featvis.core.probe import probe_input, probe_pass  # noqa: F401 - probe_input re-exported
from featvis.core.tokengrid import PrefixTokenError, prefix_index, split_layer
from featvis.core.tokens import layer_output, token_grid


class UnknownLayerError(KeyError):
    """A layer name that is not one of the model's own module names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def layer_names(model: nn.Module) -> list[str]:
    """The model's own module names, in definition order (the root '' excluded)."""
    return [name for name, _ in model.named_modules() if name]


def get_layer(model: nn.Module, name: str) -> nn.Module:
    """The module called ``name``; an unknown name gets the closest valid names first. A
    ``<module>@<token>`` name (a token layer's class or register token) gives its module."""
    return resolve_layer(model, name)[0]


def resolve_layer(model: nn.Module, name: str) -> tuple[nn.Module, int | None]:
    """The module a layer name reads, and the prefix token it picks (``None``: the whole output,
    a token layer's as its spatial map). Every layer name featvis reads is resolved here."""
    module_name, token = split_layer(name)
    modules = dict(model.named_modules())
    if module_name not in modules or not module_name:
        raise UnknownLayerError(unknown("layer", module_name, layer_names(model)))
    module = modules[module_name]
    if token is None:
        return module, None
    try:
        return module, prefix_index(name, token_grid(module))
    except PrefixTokenError as error:
        raise UnknownLayerError(str(error)) from None


class _StopForward(Exception):
    """Raised from a hook to end a forward pass once every wanted layer has run."""


@contextlib.contextmanager
def capture(
    model: nn.Module, layers: Iterable[str], detach: bool = True, stop_early: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` in a dict that each forward pass refills.

    With ``stop_early`` the forward pass ends as soon as all layers have produced
    output (use :func:`run_to_layers`), so nothing deeper is computed.
    """
    names = list(dict.fromkeys(layers))
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str, token: int | None):
        def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            seen = layer_output(module, output, token)  # a token layer as its (B, C, H, W) map, or one token
            outputs[name] = seen.detach() if detach else seen
            if stop_early and len(outputs) == len(names):
                raise _StopForward
            if token is None and seen is not output and not detach:  # the model goes on from the map,
                return token_grid(module).to_tokens(seen, output)  # so gradients reach it
            return None  # a prefix token is a slice of the output itself: gradients reach it as it is

        return hook

    try:
        for name in names:
            module, token = resolve_layer(model, name)
            handles.append(module.register_forward_hook(make_hook(name, token)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run_to_layers(model: nn.Module, inputs: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
    """Run ``model`` on ``inputs`` inside :func:`capture`, stopping early if it asked to."""
    outputs.clear()
    with contextlib.suppress(_StopForward):
        model(inputs)


def execution_order(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...] | None]:
    """Named modules in the order a probe forward pass first runs them, with the shape
    of that first output (without the batch axis; ``None`` when it is not a tensor)."""
    return probe_calls(model, input_shape)[0]


def probe_calls(
    model: nn.Module, input_shape: tuple[int, ...], stop_after: str | None = None
) -> tuple[dict[str, tuple[int, ...] | None], dict[str, int]]:
    """:func:`execution_order`, plus how many times each module ran (a shared module runs more than once).
    Token layers report the shape of their spatial map, ``(C, H, W)``. With ``stop_after`` the pass
    ends once that module has run (what comes after it may not run at this input size)."""
    seen: dict[str, tuple[int, ...] | None] = {}
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(module, _inputs, output) -> None:  # returning a value would replace the output
            calls[name] = calls.get(name, 0) + 1
            if name not in seen:
                output = layer_output(module, output)
                seen[name] = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
            if name == stop_after:
                raise _StopForward

        return hook

    with contextlib.suppress(_StopForward):
        probe_pass(model, input_shape, {name: make_hook(name) for name in layer_names(model)})
    return seen, calls
