"""Attribution: what in an image drives a unit (feature-based) or a decision (class maps).

* DeconvNet (Zeiler & Fergus 2014): project one activation back to pixel space by
  running the backward pass with each rectifier replaced by a rectifier of the
  *signal* (forward mask ignored); max-pooling uses its forward switches (autograd's
  own routing) and convolutions their transposes. Guided backprop keeps the forward
  mask as well. Both work by swapping the model's activation modules for the duration
  of the call (a registry maps module types to rules), and functional ReLUs in the model's
  own forward (``torch.relu``, ``F.relu``, ``x.relu()``) through a ``TorchFunctionMode``,
  so no model code changes.
* CAM (Zhou et al. 2016) for models that end in global average pooling + linear,
  checked numerically; Grad-CAM (Selvaraju et al. 2017) for any layer with a spatial grid.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from featvis.core.hooks import capture, get_layer, run_to_layers

log = logging.getLogger(__name__)


class AttributionError(ValueError):
    """An attribution that cannot be computed for this model or layer."""


# --- DeconvNet and guided backprop ------------------------------------------------


class _Rectifier(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, upper: float, guided: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper, ctx.guided = upper, guided
        return x.clamp(0.0, upper)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        signal = grad.clamp(min=0.0)  # both rules pass only positive signal
        if ctx.guided:
            (x,) = ctx.saved_tensors
            signal = signal * ((x > 0) & (x < ctx.upper))
        return signal, None, None


class ModifiedRectifier(nn.Module):
    def __init__(self, upper: float, guided: bool) -> None:
        super().__init__()
        self.upper, self.guided = upper, guided

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Rectifier.apply(x, self.upper, self.guided)


# Module type -> the rectifier's upper bound; extend for other ReLU-like modules.
RECTIFIERS: dict[type[nn.Module], Callable[[nn.Module], float]] = {
    nn.ReLU: lambda m: float("inf"),
    nn.ReLU6: lambda m: 6.0,
}
# Functional rectifiers (a model's own `torch.relu(x)`, `F.relu(x)`, `x.relu()`) -> upper bound.
# In-place forms are computed out of place: a forward that uses their return value, as
# `x = F.relu(x, inplace=True)` does, is unchanged.
RECTIFIER_FUNCTIONS: dict[Callable, float] = {
    torch.relu: float("inf"), torch.relu_: float("inf"), nn.functional.relu: float("inf"),
    torch.Tensor.relu: float("inf"), torch.Tensor.relu_: float("inf"), nn.functional.relu6: 6.0,
}
METHODS = ("deconvnet", "guided_backprop")


class FunctionalRectifiers(TorchFunctionMode):
    """Counts the functional rectifiers a forward pass calls and, with ``guided`` set (True or
    False, not None), runs each with the projection's backward rule instead."""

    def __init__(self, guided: bool | None = None) -> None:
        super().__init__()
        self.guided, self.calls = guided, 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in RECTIFIER_FUNCTIONS:
            return func(*args, **kwargs)
        self.calls += 1
        if self.guided is None:
            return func(*args, **kwargs)
        return _Rectifier.apply(args[0], RECTIFIER_FUNCTIONS[func], self.guided)


@contextlib.contextmanager
def modified_rectifiers(model: nn.Module, method: str) -> Iterator[FunctionalRectifiers]:
    """Swap every registered rectifier module, and every rectifier function the forward pass calls,
    for the ``method``'s backward rule; restore after."""
    if method not in METHODS:
        raise AttributionError(f"unknown projection method {method!r}; use one of {', '.join(METHODS)}")
    swapped = []
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) in RECTIFIERS:
                swapped.append((parent, name, child))
                setattr(parent, name, ModifiedRectifier(RECTIFIERS[type(child)](child), method == "guided_backprop"))
    functional = FunctionalRectifiers(guided=method == "guided_backprop")
    try:
        with functional:
            yield functional
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
    if not swapped and not functional.calls:
        raise AttributionError(
            f"{method} needs rectifiers (modules {', '.join(t.__name__ for t in RECTIFIERS)}, or torch.relu / "
            "F.relu / F.relu6 calls); this model has none: register its activation type in "
            "featvis.vision.attribution.RECTIFIERS"
        )


def project(model: nn.Module, layer: str, images: torch.Tensor, channel: int, ys: Sequence[int],
            xs: Sequence[int], method: str = "deconvnet") -> np.ndarray:
    """Project activation (channel, y_n, x_n) of each image n back to pixel space:
    an (N, C, H, W) array. Images are independent (eval mode), so one backward does all."""
    images = images.clone().requires_grad_(True)
    with modified_rectifiers(model, method), capture(model, [layer], detach=False, stop_early=True) as out:
        run_to_layers(model, images, out)
        act = out[layer]
        if not 0 <= channel < act.shape[1]:
            raise AttributionError(f"channel {channel} is out of range: {layer} has {act.shape[1]} channels")
        rows = torch.arange(len(images))
        if act.ndim == 4:
            picked = act[rows, channel, torch.as_tensor(list(ys)), torch.as_tensor(list(xs))]
        else:
            picked = act[rows, channel]
        (grad,) = torch.autograd.grad(picked.sum(), images)
    return grad.detach().cpu().numpy()


def projection_to_image(projection: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A (C, H, W) projection as uint8 (H, W[, 3]): grey is zero, scaled by the 99.5th
    percentile of magnitudes inside ``box`` (the receptive field) so its detail is visible."""
    image = projection.transpose(1, 2, 0)
    region = image if box is None else image[box[0] : box[1], box[2] : box[3]]
    scale = float(np.percentile(np.abs(region), 99.5)) or 1.0  # a few extreme pixels would grey out the rest
    out = np.clip(128 + 127 * image / scale, 0, 255).astype(np.uint8)
    return out[..., 0] if out.shape[2] == 1 else out


# --- class activation maps -------------------------------------------------------


def _final_linear_and_pool(model: nn.Module) -> tuple[nn.Linear, nn.Module]:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not linears or not pools:
        raise AttributionError("CAM needs a model ending in global average pooling + linear; use Grad-CAM instead")
    return linears[-1], pools[-1]


def _predict(model: nn.Module, images: torch.Tensor, classes: Sequence[int] | None, logits: torch.Tensor):
    probs = logits.detach().softmax(dim=1)
    chosen = probs.argmax(dim=1) if classes is None or len(classes) == 0 else torch.as_tensor(list(classes))
    if len(chosen) != len(images):
        raise AttributionError(f"{len(chosen)} classes given for {len(images)} images; give one per image")
    if int(chosen.max()) >= logits.shape[1] or int(chosen.min()) < 0:
        raise AttributionError(f"class index out of range: the model has {logits.shape[1]} classes")
    return chosen, probs[torch.arange(len(images)), chosen]


def class_activation_map(model: nn.Module, images: torch.Tensor, classes: Sequence[int] | None = None):
    """CAM: sum_c w[class, c] * A_c(y, x) on the map fed to the final global pooling.
    Returns (maps (N, h, w), classes, probabilities). Refuses models where the logits
    are not exactly linear(mean(A)): then CAM would not explain them."""
    linear, pool = _final_linear_and_pool(model)
    seen: dict[str, torch.Tensor] = {}
    handle = pool.register_forward_pre_hook(lambda m, args: seen.__setitem__("a", args[0]))
    try:
        with torch.no_grad():
            logits = model(images)
    finally:
        handle.remove()
    fmap = seen["a"]
    if fmap.ndim != 4 or linear.in_features != fmap.shape[1]:
        raise AttributionError("CAM needs a model ending in global average pooling + linear; use Grad-CAM instead")
    rebuilt = fmap.mean(dim=(2, 3)) @ linear.weight.T + (linear.bias if linear.bias is not None else 0)
    if not torch.allclose(rebuilt, logits, rtol=1e-4, atol=1e-4 * float(logits.abs().max())):
        raise AttributionError("CAM needs a model whose logits are linear(global mean of the last feature map); "
                               "this model does more after pooling: use Grad-CAM instead")
    chosen, prob = _predict(model, images, classes, logits)
    maps = torch.einsum("nc,nchw->nhw", linear.weight[chosen], fmap)
    return maps.detach().cpu().numpy(), chosen.numpy(), prob.numpy()


def grad_cam(model: nn.Module, layer: str, images: torch.Tensor, classes: Sequence[int] | None = None):
    """Grad-CAM at ``layer``: ReLU(sum_c mean_yx(d score / d A_c) * A_c). Returns
    (maps (N, h, w), classes, probabilities)."""
    get_layer(model, layer)
    with capture(model, [layer], detach=False) as out:
        logits = model(images)
    act = out[layer]
    if act.ndim != 4:
        raise AttributionError(f"Grad-CAM needs a layer with a spatial grid; {layer!r} outputs shape "
                               f"{tuple(act.shape)} (a linear layer): pick a convolutional layer")
    chosen, prob = _predict(model, images, classes, logits)
    score = logits[torch.arange(len(images)), chosen].sum()
    (grads,) = torch.autograd.grad(score, act)
    maps = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * act).sum(dim=1))
    return maps.detach().cpu().numpy(), chosen.numpy(), prob.numpy()


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A map upsampled (bilinear) to the image, ReLU'd, scaled to its max and blended in jet."""
    import matplotlib

    size = image.shape[:2]
    heat = torch.from_numpy(np.asarray(heat, np.float32))[None, None]
    heat = torch.nn.functional.interpolate(heat, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    heat = np.maximum(heat, 0)
    heat = heat / heat.max() if heat.max() > 0 else heat
    colour = matplotlib.colormaps["jet"](heat)[..., :3]
    base = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]  # RGBA: its colours
    return ((1 - alpha) * base + alpha * 255 * colour).clip(0, 255).astype(np.uint8)
