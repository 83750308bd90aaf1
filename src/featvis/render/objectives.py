"""Objectives: what a render maximises, one score per batch item.

An objective maps the captured activations ``{layer: (B, C, H, W) or (B, C)}`` to a
vector of ``B`` scores, one per render in the batch, so a whole layer of channels
renders in one forward/backward. Objectives compose with ``+``, ``-``, ``*`` (a
scalar or one weight per item) and :func:`interpolate`; negate one to minimise it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

Acts = Mapping[str, torch.Tensor]


class ChannelOutOfRangeError(ValueError):
    """An objective names a channel (or class) the layer does not have."""


class Objective:
    """A named, composable score: ``objective(acts) -> (B,)`` to maximise."""

    def __init__(self, fn: Callable[[Acts], torch.Tensor], layers: Sequence[str], name: str,
                 checks: Sequence[Callable[[Acts], None]] = ()) -> None:
        self.fn = fn
        self.layers = tuple(dict.fromkeys(layers))
        self.name = name
        self.checks = tuple(checks)

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def check(self, acts: Acts) -> None:
        """Raise a clear error if a channel or class index is outside its layer."""
        for check in self.checks:
            check(acts)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    def _join(self, other: Objective, fn: Callable, symbol: str) -> Objective:
        return Objective(fn, self.layers + other.layers, f"{self.name} {symbol} {other.name}",
                         self.checks + other.checks)

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            return Objective(lambda a: self(a) + other, self.layers, f"{self.name} + {other}", self.checks)
        return self._join(other, lambda a: self(a) + other(a), "+")

    __radd__ = __add__

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-1 * other)

    def __neg__(self) -> Objective:
        return -1 * self

    def __mul__(self, weight: float | Sequence[float] | torch.Tensor) -> Objective:
        if isinstance(weight, Objective):
            raise TypeError("objectives multiply by a scalar or per-item weights, not by an objective")
        w = weight if isinstance(weight, int | float) else torch.as_tensor(weight, dtype=torch.float32)
        label = f"{weight}" if isinstance(weight, int | float) else "w"

        def fn(acts: Acts) -> torch.Tensor:
            score = self(acts)
            return score * (w.to(score.device) if isinstance(w, torch.Tensor) else w)

        return Objective(fn, self.layers, f"{label}*({self.name})", self.checks)

    __rmul__ = __mul__


def _items(values: int | Sequence[int], batch: int) -> torch.Tensor:
    """One index per batch item: a single int is broadcast to every item."""
    if isinstance(values, int):
        return torch.full((batch,), values, dtype=torch.long)
    index = torch.as_tensor(list(values), dtype=torch.long)
    if index.numel() != batch:
        raise ValueError(f"objective gives {index.numel()} indices for a batch of {batch} renders")
    return index


def _range_check(layer: str, values: int | Sequence[int], what: str) -> Callable[[Acts], None]:
    wanted = [values] if isinstance(values, int) else list(values)

    def check(acts: Acts) -> None:
        size = acts[layer].shape[1]
        bad = [v for v in wanted if not 0 <= v < size]
        if bad:
            raise ChannelOutOfRangeError(
                f"{what} {bad[0]} is out of range for layer {layer!r}, which has {size} "
                f"{what}s (valid: 0..{size - 1})"
            )

    return check


def _pick(act: torch.Tensor, index: int | Sequence[int]) -> torch.Tensor:
    """``act[i, index[i]]`` for every item i, keeping any spatial dims."""
    idx = _items(index, act.shape[0]).to(act.device)
    return act[torch.arange(act.shape[0], device=act.device), idx]


def channel(layer: str, index: int | Sequence[int]) -> Objective:
    """Mean activation of a channel over all positions (one channel per item if a list)."""

    def fn(acts: Acts) -> torch.Tensor:
        picked = _pick(acts[layer], index)
        return picked.flatten(1).mean(1) if picked.dim() > 1 else picked

    return Objective(fn, [layer], f"channel({layer}, {index})", [_range_check(layer, index, "channel")])


def neuron(layer: str, index: int | Sequence[int], x: int | None = None, y: int | None = None) -> Objective:
    """Activation of a channel at one spatial position (the centre unless given)."""

    def fn(acts: Acts) -> torch.Tensor:
        picked = _pick(acts[layer], index)
        height, width = picked.shape[-2:]
        return picked[:, height // 2 if y is None else y, width // 2 if x is None else x]

    return Objective(fn, [layer], f"neuron({layer}, {index}, x={x}, y={y})",
                     [_range_check(layer, index, "channel")])


def layer(name: str) -> Objective:
    """DeepDream: mean squared activation of the whole layer."""
    return Objective(lambda acts: acts[name].pow(2).flatten(1).mean(1), [name], f"layer({name})")


def class_logit(layer: str, index: int | Sequence[int]) -> Objective:
    """A class logit (``layer`` is the module that outputs logits)."""

    def fn(acts: Acts) -> torch.Tensor:
        return _pick(acts[layer].flatten(1), index)

    return Objective(fn, [layer], f"logit({layer}, {index})", [_range_check(layer, index, "class")])


def class_probability(layer: str, index: int | Sequence[int]) -> Objective:
    """Softmax probability of a class: raising it also lowers the other classes."""

    def fn(acts: Acts) -> torch.Tensor:
        return _pick(F.softmax(acts[layer].flatten(1), dim=1), index)

    return Objective(fn, [layer], f"prob({layer}, {index})", [_range_check(layer, index, "class")])


def direction(layer: str, vector: torch.Tensor | Sequence[float], cossim: bool = False) -> Objective:
    """Dot product (or cosine similarity) with a vector in activation space, averaged over positions.

    ``vector`` is (C,) for every item or (B, C) for one direction per item.
    """
    vec = torch.as_tensor(vector, dtype=torch.float32)

    def fn(acts: Acts) -> torch.Tensor:
        act = acts[layer]
        v = vec.to(act.device)
        v = v.reshape(*((1,) if v.dim() == 1 else (v.shape[0],)), -1, *([1] * (act.dim() - 2)))
        score = F.cosine_similarity(act, v, dim=1) if cossim else (act * v).sum(1)
        return score.flatten(1).mean(1) if score.dim() > 1 else score

    def check(acts: Acts) -> None:
        if vec.shape[-1] != acts[layer].shape[1]:
            raise ChannelOutOfRangeError(
                f"direction has {vec.shape[-1]} components but layer {layer!r} has "
                f"{acts[layer].shape[1]} channels"
            )

    return Objective(fn, [layer], f"direction({layer})", [check])


def random_direction(layer: str, channels: int, seed: int) -> Objective:
    """A unit-length random direction, fixed by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    vec = torch.randn(channels, generator=gen)
    return direction(layer, vec / vec.norm())


def _gram(act: torch.Tensor) -> torch.Tensor:
    flat = act.flatten(2)  # (B, C, HW)
    return (flat @ flat.transpose(1, 2)).flatten(1)


def diversity(layer: str, groups: Sequence[int] | None = None) -> Objective:
    """Minus the mean cosine similarity of each item's Gram matrix to the others in its group.

    Items in different ``groups`` (e.g. different channels) do not push each other apart.
    """

    def fn(acts: Acts) -> torch.Tensor:
        gram = F.normalize(_gram(acts[layer]), dim=1)
        sim = gram @ gram.t()
        batch = sim.shape[0]
        group = torch.zeros(batch, dtype=torch.long) if groups is None else _items(groups, batch)
        same = (group[:, None] == group[None, :]).to(sim.device)
        same.fill_diagonal_(False)
        count = same.sum(1).clamp(min=1)
        return -(sim * same).sum(1) / count

    return Objective(fn, [layer], f"diversity({layer})")


def alignment(layer: str, decay_ratio: float = 2.0, reach: int = 4) -> Objective:
    """Keep neighbouring frames of an interpolation alike: minus their activation distance.

    Pairs ``d`` apart count ``decay_ratio ** -d``; each pair's penalty is shared by both items.
    """

    def fn(acts: Acts) -> torch.Tensor:
        act = acts[layer]
        batch = act.shape[0]
        score = act.new_zeros(batch)
        for d in range(1, min(reach, batch - 1) + 1):
            dist = (act[d:] - act[:-d]).pow(2).flatten(1).mean(1) / decay_ratio**d
            score = score.index_add(0, torch.arange(batch - d, device=act.device), -dist / 2)
            score = score.index_add(0, torch.arange(d, batch, device=act.device), -dist / 2)
        return score

    return Objective(fn, [layer], f"alignment({layer})")


def interpolate(a: Objective, b: Objective, frames: int) -> Objective:
    """Frame i of ``frames`` maximises ``(1 - t) a + t b`` with t going 0 -> 1."""
    if frames < 2:
        raise ValueError(f"an interpolation needs at least 2 frames, got {frames}")
    t = torch.linspace(0.0, 1.0, frames)
    return a * (1 - t) + b * t


def stack(items: Sequence[Objective]) -> Objective:
    """Item i of the batch maximises ``items[i]`` (e.g. a, a + b and b side by side)."""
    items = list(items)

    def fn(acts: Acts) -> torch.Tensor:
        scores = [o(acts) for o in items]
        if len(scores) != scores[0].shape[0]:
            raise ValueError(f"stack of {len(scores)} objectives for a batch of {scores[0].shape[0]}")
        return torch.stack([s[i] for i, s in enumerate(scores)])

    layers = [name for o in items for name in o.layers]
    checks = [c for o in items for c in o.checks]
    return Objective(fn, layers, "stack(" + ", ".join(o.name for o in items) + ")", checks)
