"""The path check: does a unit's render reach the unit the way its top natural images do?

For a unit (layer L, channel c), a fixed, ordered set of *probe layers* up to L is read
(:func:`probe_layers`). At each one, every image becomes one vector: its activation map
averaged over positions (a ``(B, C)`` output is taken as it is). Natural images that drive
the unit hard (its top-K) look alike there, and unlike reference images (its bottom-K, or a
seeded random draw): that is the *natural gap*. A render that reaches the unit by the same
path should stand apart from the reference as the top images do (the *render gap*); one
that reaches it by a different path (Geirhos et al. 2024, "Don't trust your eyes") does
not. See docs/trust.md.

Definitions, at each probe layer l. Every channel is first standardised over the natural
images of the check (minus its mean over the top and reference images, over its spread
there; channels constant on them are dropped), so that a channel large on every image
does not make all images look alike. rho is Spearman's correlation over the channels;
means run over all pairs:

- ``render_top``  = mean rho(render, top_i)          ``render_reference`` = mean rho(render, ref_j)
- ``top_top``     = mean rho(top_i, top_j), i != j   ``top_reference``    = mean rho(top_i, ref_j)
- ``gap_render``  = render_top - render_reference    ``gap_natural``      = top_top - top_reference
- ``ratio``       = gap_render / gap_natural, on the *scored* layers: those before L whose
  gap_natural is at least ``MIN_NATURAL_GAP`` (L's own row is reported, not scored: the
  render is made to drive L, so L says little about the way there)

``score`` = sum of gap_render / sum of gap_natural over the scored layers: the mean of their
ratios, each weighted by its natural gap, so that a layer where the top images barely stand
apart (a small, noisy denominator) counts little. 1: the render stands apart from the
reference as much as the top images do; 0: it looks no more like the top images than like
the reference; below 0: it looks more like the reference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from featvis.core.hooks import capture, get_layer, probe_calls, run_to_layers
from featvis.core.tokengrid import split_layer
from featvis.trust.rank import spearman

THRESHOLD = 0.5
"""Scores at or above it read "reaches this unit the way its top images do". Halfway between
0 (no more like the top images than like the reference) and 1 (as much as the top images
themselves). On the known-answer model (tests/test_trust_path.py) the fooled unit scores
-0.15, the same unit without the circuit 1.07, another unit 0.98. Over all 32 units of that
model, each fooled in turn (benchmarks/results/trust_threshold.md), honest renders score a
median of 0.95 and fooled ones 0.17, and every threshold from 0.4 to 0.6 misclassifies 7 or 8
of the 64: the midpoint is kept rather than a value tuned to one small model. On the default
run's EfficientNet-Lite0 renders (``_blocks.10`` channels 0-7) every threshold in (0.30, 0.71]
gives the same verdicts; 0.5 is the middle of that gap (docs/trust.md, "Why 0.5")."""

MIN_NATURAL_GAP = 0.1
"""A probe layer whose natural gap is below this is left out of the score (its ratio is
``None``): there the top images do not stand apart from the reference, so the layer says
nothing about the unit's path, and a ratio to a near-zero gap is noise. With standardised
channels the gaps of the known-answer model's layers run from 0.13 to 1.2 (a gap can reach
2: top images perfectly alike, perfectly unlike the reference); 0.1 leaves out only layers
where the separation is close to none."""

MIN_IMAGES = 3
"""Fewest top (and reference) images the check runs with: two give a single top-top pair."""

DEFAULT_K = 8
MIN_PROBE_CHANNELS = 4  # a rank correlation over fewer channels says almost nothing
FIRES_ATOL = 1e-12  # top activations within this of zero count as "never fires"
REFERENCE_KINDS = ("bottom", "random")
SKIPPED_MODULES = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)  # repeat their input

SAME_PATH = "reaches this unit the way its top images do"
OTHER_PATH = "reaches it by a different path"
VERDICTS = {
    "never_fires": "this unit never fires on this dataset",
    "too_few_images": f"too few images to compare (at least {MIN_IMAGES} top and {MIN_IMAGES} reference)",
    "no_earlier_layer": "no probe layer before this unit's layer: nothing to compare",
    "no_natural_gap": "cannot tell: at no earlier layer do the top images stand apart from the reference",
}


@dataclass(frozen=True)
class ProbeLayers:
    """The ordered layers the check reads; the last is the unit's own layer."""

    layers: tuple[str, ...]
    rule: str


@dataclass
class LayerEvidence:
    layer: str
    render_top: float
    render_reference: float
    top_top: float
    top_reference: float
    gap_render: float
    gap_natural: float
    ratio: float | None  # None: natural gap below MIN_NATURAL_GAP, or the unit's own layer
    scored: bool


@dataclass
class PathCheck:
    """Everything the check found for one unit; ``to_dict()`` is plain JSON."""

    layer: str
    channel: int
    status: str  # "ok", or a key of VERDICTS
    verdict: str
    score: float | None
    threshold: float
    probe_layers: list[str]
    probe_rule: str
    reference: str  # "bottom" or "random (seed 0)"
    k: int
    n_top: int
    n_reference: int
    top_activation_max: float
    layers: list[LayerEvidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def probe_layers(model: nn.Module, layer: str, input_shape: tuple[int, ...],
                 analysed: Sequence[str] | None = None) -> ProbeLayers:
    """The probe layers for units of ``layer``, in the order a forward pass runs them.

    With ``analysed`` (e.g. the layers the features stage covers): those that run no later than
    ``layer``. Without: the blocks on the path to ``layer``: the model's top-level children that
    run before it and, inside each module that contains it, the children that run before it
    (for a torchvision ResNet's ``layer3.1``: conv1, bn1, relu, maxpool, layer1, layer2,
    layer3.0). Either way ``layer`` comes last, and only outputs of ``(C,)`` or ``(C, H, W)``
    with at least ``MIN_PROBE_CHANNELS`` channels are kept; identity and dropout modules (which
    repeat their input) and modules that run more than once (a shared activation: which call's
    output would it be?) are not.
    """
    target = split_layer(layer)[0]
    order, calls = probe_calls(model, input_shape, stop_after=target)  # as a render, up to the unit's layer
    position = {name: i for i, name in enumerate(order)}
    if target not in position:
        raise ValueError(f"layer {layer!r} does not run in a forward pass of a {input_shape} input")
    if analysed is not None:
        for name in analysed:
            get_layer(model, name)  # an unknown name fails listing the closest valid ones
        named, rule = list(analysed), f"the analysed layers up to {layer}"
    else:
        named, rule = _path_blocks(model, target), f"the blocks on the path to {layer}"
    modules = dict(model.named_modules())

    def probe_ok(name: str) -> bool:
        module = split_layer(name)[0]
        return (module != target and position.get(module, len(order)) < position[target]
                and _probe_shape(order[module]) and calls[module] == 1
                and not isinstance(modules[module], SKIPPED_MODULES))

    kept = sorted((name for name in dict.fromkeys(named) if probe_ok(name)),
                  key=lambda name: position[split_layer(name)[0]])
    return ProbeLayers((*kept, layer), rule)


def _path_blocks(model: nn.Module, target: str) -> list[str]:
    """Children of the root and of every module that contains ``target``, down to ``target``."""
    parts = target.split(".")
    names: list[str] = []
    for depth in range(len(parts)):
        parent = ".".join(parts[:depth])
        container = model.get_submodule(parent)
        names += [f"{parent}.{child}" if parent else child for child, _ in container.named_children()]
    return names


def _probe_shape(shape: tuple[int, ...] | None) -> bool:
    return shape is not None and len(shape) in (1, 3) and shape[0] >= MIN_PROBE_CHANNELS


def pool(activation: torch.Tensor, layer: str = "") -> torch.Tensor:
    """One vector per image: a ``(B, C, H, W)`` map averaged over positions, a ``(B, C)`` as it is."""
    if activation.ndim == 4:
        return activation.double().mean(dim=(2, 3))
    if activation.ndim == 2:
        return activation.double()
    raise ValueError(f"layer {layer!r}: expected a (B, C, H, W) or (B, C) output to pool, "
                     f"got shape {tuple(activation.shape)}")


@torch.no_grad()
def pooled_vectors(model: nn.Module, images: torch.Tensor, layers: Sequence[str],
                   unit: tuple[str, int] | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """``layer -> (B, C)`` pooled vectors of model-ready ``images`` in one forward pass, and, with
    ``unit = (layer, channel)``, that unit's spatial maximum per image (how top-K is mined)."""
    param = next(model.parameters(), None)
    images = images.to(param.device if param is not None else "cpu")
    with capture(model, layers, stop_early=True) as outputs:
        run_to_layers(model, images, outputs)
        vectors = {name: pool(outputs[name], name).cpu() for name in layers}
        peak = None
        if unit is not None:
            act = outputs[unit[0]][:, unit[1]]
            peak = act.flatten(1).amax(1).double().cpu() if act.ndim > 1 else act.double().cpu()
    return vectors, peak


def layer_evidence(layer: str, render: torch.Tensor, top: torch.Tensor, reference: torch.Tensor,
                   scored: bool = True) -> LayerEvidence:
    """The four mean correlations at one layer, from ``(1, C)``, ``(K, C)`` and ``(M, C)`` vectors."""
    for what, vectors in (("render", render), ("top", top), ("reference", reference)):
        if not bool(torch.isfinite(vectors).all()):
            raise ValueError(f"layer {layer!r}: the {what} images' activations hold NaN or infinite values")
    render, top, reference = standardise(render, top, reference)
    k = len(top)
    top_top = spearman(top, top)
    values = {
        "render_top": spearman(render, top).mean(),
        "render_reference": spearman(render, reference).mean(),
        "top_top": (top_top.sum() - top_top.diagonal().sum()) / (k * (k - 1)),
        "top_reference": spearman(top, reference).mean(),
    }
    means = {name: float(value) for name, value in values.items()}
    gap_render = means["render_top"] - means["render_reference"]
    gap_natural = means["top_top"] - means["top_reference"]
    usable = scored and gap_natural >= MIN_NATURAL_GAP
    return LayerEvidence(layer, **means, gap_render=gap_render, gap_natural=gap_natural,
                         ratio=gap_render / gap_natural if usable else None, scored=usable)


def standardise(render: torch.Tensor, top: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Each channel minus its mean over the top and reference images, over its spread there; channels
    constant on those images (dead ones, say) are dropped. Without this, a channel that is large on
    every image ranks high in every vector and all images look alike."""
    natural = torch.cat([top, reference])
    mean, spread = natural.mean(0), natural.std(0)
    keep = spread > 1e-12 * natural.abs().amax().clamp_min(1e-300)
    return tuple((v[:, keep] - mean[keep]) / spread[keep] for v in (render, top, reference))


def check_vectors(layer: str, channel: int, probe: ProbeLayers, render: Mapping[str, torch.Tensor],
                  top: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor],
                  top_activations: torch.Tensor | np.ndarray, reference_kind: str,
                  k: int = DEFAULT_K, threshold: float = THRESHOLD) -> PathCheck:
    """The check from pooled vectors (``probe layer -> (n, C)``; the render's ``n`` is 1), e.g.
    natural images' vectors read from the features stage. ``top`` and ``reference`` hold at most
    ``k`` images each (the first ``k`` are used); ``top_activations``: the unit's value on them;
    ``threshold``: the score from which the verdict is :data:`SAME_PATH`."""
    n_top, n_ref = (min(k, len(next(iter(v.values())))) for v in (top, reference))
    peak = np.asarray(top_activations, dtype=np.float64)[:n_top]
    check = _new_check(layer, channel, probe, reference_kind, k, n_top, n_ref, peak, threshold)
    if check.status != "ok":
        return check
    if len(probe.layers) < 2:
        return _ends(check, "no_earlier_layer")
    check.layers = [layer_evidence(name, render[name][:1], top[name][:n_top], reference[name][:n_ref],
                                   scored=name != probe.layers[-1]) for name in probe.layers]
    scored = [row for row in check.layers if row.scored]
    if not scored:
        return _ends(check, "no_natural_gap")
    check.score = sum(row.gap_render for row in scored) / sum(row.gap_natural for row in scored)
    check.verdict = SAME_PATH if check.score >= threshold else OTHER_PATH
    return check


def _new_check(layer: str, channel: int, probe: ProbeLayers, reference_kind: str, k: int, n_top: int,
               n_ref: int, peak: np.ndarray, threshold: float = THRESHOLD) -> PathCheck:
    """A check with its counts and notes, ended already when there are too few images or no firing."""
    check = PathCheck(layer, int(channel), "ok", "", None, threshold, list(probe.layers), probe.rule,
                      reference_kind, k, n_top, n_ref, float(np.abs(peak).max()) if len(peak) else 0.0)
    check.notes += [f"only {n} {what} images, {k} asked" for n, what in ((n_top, "top"), (n_ref, "reference"))
                    if n < k]
    if min(n_top, n_ref) < MIN_IMAGES:
        return _ends(check, "too_few_images")
    if check.top_activation_max <= FIRES_ATOL:
        return _ends(check, "never_fires")
    return check


def _ends(check: PathCheck, status: str) -> PathCheck:
    check.status, check.verdict = status, VERDICTS[status]
    return check


def check_unit(model: nn.Module, layer: str, channel: int, render: torch.Tensor, top: torch.Tensor,
               reference: torch.Tensor, reference_kind: str, k: int = DEFAULT_K,
               probe: ProbeLayers | None = None) -> PathCheck:
    """The path check of unit ``(layer, channel)`` from model-ready images (``(B, C, H, W)``,
    normalised as the model expects: see :func:`model_inputs`): one render (``(1, C, H, W)``
    or ``(C, H, W)``), the unit's top images (ranked, best first) and the reference images.
    ``probe`` defaults to :func:`probe_layers` on the natural images' shape. The model is put in
    eval mode."""
    model = model.eval()
    render = render[None] if render.ndim == 3 else render
    if len(render) != 1:
        raise ValueError(f"check_unit takes one render, got {len(render)}: check each copy on its own")
    top, reference = top[:k], reference[:k]
    probe = probe or probe_layers(model, layer, (1, *top.shape[1:]))
    if min(len(top), len(reference)) < MIN_IMAGES:  # nothing to run the model on
        return _new_check(layer, channel, probe, reference_kind, k, len(top), len(reference), np.ones(0))
    top_vectors, peak = pooled_vectors(model, top, probe.layers, unit=(layer, channel))
    reference_vectors, _ = pooled_vectors(model, reference, probe.layers)
    render_vectors, _ = pooled_vectors(model, render, probe.layers)
    return check_vectors(layer, channel, probe, render_vectors, top_vectors, reference_vectors,
                         peak, reference_kind, k)


def reference_indices(activations: np.ndarray, top: Sequence[int], k: int, kind: str = "bottom",
                      seed: int = 0) -> tuple[np.ndarray, str]:
    """``k`` reference images for a unit from its activation on every image (``(N,)``), never one
    of its ``top`` images: the ``k`` lowest (``bottom``, ties to the lower index) or a draw seeded
    by ``seed`` (``random``). Returns the indices and the label the check records."""
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"reference kind {kind!r} is not one of {', '.join(REFERENCE_KINDS)}")
    rest = np.setdiff1d(np.arange(len(activations)), np.asarray(top, dtype=np.int64))
    if kind == "bottom":
        return rest[np.argsort(np.asarray(activations)[rest], kind="stable")[:k]], "bottom"
    drawn = np.random.default_rng(seed).choice(rest, size=min(k, len(rest)), replace=False)
    return np.sort(drawn), f"random (seed {seed})"


def model_inputs(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(B, H, W, 3)`` images in [0, 1] (a render's ``images``) -> normalised ``(B, 3, H, W)`` float32."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    shape = (1, -1, 1, 1)
    return (x - torch.tensor(mean).reshape(shape)) / torch.tensor(std).reshape(shape)
