"""Streaming attention aggregation: per-head weights are reduced as each layer runs.

A forward hook on every self-attention module reads that layer's (heads, T, T)
weights, folds them into a handful of (T, T) accumulators and drops them, so the
pass never holds layers x heads x T x T (fair-esm's ``need_head_weights=True``
stacks all of them). What is kept, per sequence:

* head-mean and head-max maps (averaged over layers),
* symmetrized, APC-corrected maps (per head, averaged over heads and layers),
* attention rollout (Abnar & Zuidema 2020) over the head-mean maps,
* the model's own contact head, where it has one: its logistic regression over the
  per-head APC maps is linear, so it is accumulated head by head too,
* per-residue importance (attention received) per layer, from mean and max maps.

Sequences longer than the model's limit are cut into overlapping windows whose
results are averaged where windows overlap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np
import torch

from featvis.protein.estimate import tile_windows
from featvis.protein.models import ProteinLM

MAP_NAMES = ("mean", "max", "apc", "rollout", "contacts")


def symmetrize(x: torch.Tensor) -> torch.Tensor:
    return x + x.transpose(-1, -2)


def apc(x: torch.Tensor) -> torch.Tensor:
    """Average product correction (Dunn et al. 2008) over the last two dimensions."""
    row = x.sum(-1, keepdim=True)
    col = x.sum(-2, keepdim=True)
    return x - row * col / x.sum((-1, -2), keepdim=True)


def received(attention: torch.Tensor) -> torch.Tensor:
    """Attention each residue receives from all residues, scaled so the average residue is 1."""
    total = attention.sum(0)
    return total / total.mean().clamp_min(1e-12)


@dataclass
class AttentionSummary:
    """Everything the report needs from one sequence, residues only (no special tokens)."""

    importance_mean: np.ndarray  # (layers, L): received attention, head-mean maps
    importance_max: np.ndarray  # (layers, L): received attention, head-max maps
    mean: np.ndarray  # (L, L)
    max: np.ndarray  # (L, L)
    apc: np.ndarray  # (L, L)
    rollout: np.ndarray  # (L, L)
    contacts: np.ndarray | None  # (L, L) probabilities, or None without a contact head
    log_probs: np.ndarray  # (L, 20) model's residue log-probabilities, wild-type marginal

    def importance(self, reduction: str = "mean") -> np.ndarray:
        """Per-residue importance over all model layers."""
        per_layer = {"mean": self.importance_mean, "max": self.importance_max}[reduction]
        return per_layer.mean(0)

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


class _Accumulator:
    """Forward hooks folding each layer's per-head weights into (T, T) sums."""

    def __init__(self, lm: ProteinLM, tokens: int):
        self.lm = lm
        n = tokens - 2
        on = {"device": lm.device}
        self.mean = torch.zeros(tokens, tokens, **on)
        self.max = torch.zeros(tokens, tokens, **on)
        self.apc = torch.zeros(n, n, **on)
        self.rollout = torch.eye(tokens, **on)
        self.contact = torch.zeros(n, n, **on) if lm.contact_weight is not None else None
        self.importance_mean: list[torch.Tensor] = []
        self.importance_max: list[torch.Tensor] = []
        self.layer = 0

    def pre_hook(self, module, args, kwargs):
        return args, {**kwargs, **self.lm.head_kwargs}

    def hook(self, module, args, output):
        heads = self.lm.read_heads(output).float()  # (H, T, T), one layer only
        self._fold(heads)
        self.layer += 1
        return self.lm.drop_heads(output)

    def _fold(self, heads: torch.Tensor) -> None:
        mean = heads.mean(0)
        peak = heads.amax(0)
        self.mean += mean
        self.max += peak
        self.importance_mean.append(received(mean[1:-1, 1:-1]))
        self.importance_max.append(received(peak[1:-1, 1:-1]))
        # Rollout: residual connection as identity, rows renormalised.
        mixed = 0.5 * mean + 0.5 * torch.eye(mean.shape[0], device=mean.device)
        self.rollout = (mixed / mixed.sum(-1, keepdim=True)) @ self.rollout
        # Symmetrized APC summed over heads without a per-head (L, L) map: for S = A + A^T
        # with row sums r and total t, apc(S) = S - r r^T / t, and sums of S are linear.
        inner = heads[:, 1:-1, 1:-1]
        r = inner.sum(2) + inner.sum(1)  # (H, L): row sums of each symmetrized head
        t = 2 * inner.sum((1, 2))  # (H,)
        self.apc += heads.shape[0] * symmetrize(mean[1:-1, 1:-1]) - (r.T / t) @ r
        if self.contact is not None:
            w = self.lm.contact_weight[self.layer].to(heads)
            weighted = torch.einsum("h,hij->ij", w, inner)
            self.contact += symmetrize(weighted) - (r.T * (w / t)) @ r

    def summary(self, log_probs: torch.Tensor) -> AttentionSummary:
        layers = max(self.layer, 1)
        heads = self.lm.num_heads
        inner = slice(1, -1)
        contacts = None
        if self.contact is not None:
            contacts = _numpy(torch.sigmoid(self.contact + self.lm.contact_bias))
        return AttentionSummary(
            importance_mean=_numpy(torch.stack(self.importance_mean)),
            importance_max=_numpy(torch.stack(self.importance_max)),
            mean=_numpy(self.mean[inner, inner] / layers),
            max=_numpy(self.max[inner, inner] / layers),
            apc=_numpy(self.apc / (layers * heads)),
            rollout=_numpy(self.rollout[inner, inner]),
            contacts=contacts,
            log_probs=_numpy(log_probs),
        )


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


@contextlib.contextmanager
def streaming_hooks(lm: ProteinLM, tokens: int) -> Iterator[_Accumulator]:
    """Attach the accumulating hooks to every self-attention module for one pass."""
    acc = _Accumulator(lm, tokens)
    handles = []
    try:
        for module in lm.attention_modules:
            if lm.head_kwargs:
                handles.append(module.register_forward_pre_hook(acc.pre_hook, with_kwargs=True))
            handles.append(module.register_forward_hook(acc.hook))
        yield acc
    finally:
        for handle in handles:
            handle.remove()


def residue_log_probs(lm: ProteinLM, logits: torch.Tensor) -> torch.Tensor:
    """(L, 20) log-probabilities over the 20 amino acids (special tokens dropped)."""
    return torch.log_softmax(logits[1:-1, lm.aa_ids.to(logits.device)].float(), dim=-1)


@torch.inference_mode()
def summarize_window(lm: ProteinLM, sequence: str) -> AttentionSummary:
    """One forward pass over a sequence that fits the model."""
    tokens = lm.encode(sequence)
    with streaming_hooks(lm, tokens.shape[1]) as acc:
        logits = lm.attention_logits(tokens)[0]
    if acc.layer != lm.num_layers:
        raise RuntimeError(f"expected {lm.num_layers} attention layers, hooks saw {acc.layer}")
    return acc.summary(residue_log_probs(lm, logits))


def summarize(lm: ProteinLM, sequence: str, window: int | None = None, overlap: int = 256) -> AttentionSummary:
    """Attention summary of ``sequence``, tiled when it exceeds the model's limit.

    Where windows overlap, per-residue values are averaged over the windows that hold
    the residue and pair maps over the windows that hold both residues; pairs that
    share no window are NaN.
    """
    window = min(window or lm.max_residues, lm.max_residues)
    tiles = tile_windows(len(sequence), window, min(overlap, window - 1))
    if len(tiles) == 1:
        return summarize_window(lm, sequence)
    return merge_tiles([(start, summarize_window(lm, sequence[start:end])) for start, end in tiles], len(sequence))


def merge_tiles(parts: list[tuple[int, AttentionSummary]], length: int) -> AttentionSummary:
    """Average window summaries placed at their start offsets into one of ``length`` residues."""
    first = parts[0][1]
    layers = first.importance_mean.shape[0]
    vec_sum = {k: np.zeros((layers, length)) for k in ("importance_mean", "importance_max")}
    vec_count = np.zeros(length)
    lp_sum = np.zeros((length, first.log_probs.shape[1]))
    names = [n for n in MAP_NAMES if getattr(first, n) is not None]
    map_sum = {n: np.zeros((length, length), dtype=np.float32) for n in names}
    map_count = np.zeros((length, length), dtype=np.float32)
    for start, part in parts:
        n = part.log_probs.shape[0]
        span = slice(start, start + n)
        for key in vec_sum:
            vec_sum[key][:, span] += getattr(part, key)
        lp_sum[span] += part.log_probs
        vec_count[span] += 1
        for name in names:
            map_sum[name][span, span] += getattr(part, name)
        map_count[span, span] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        maps = {n: (map_sum[n] / map_count).astype(np.float32) for n in names}
    return AttentionSummary(
        importance_mean=(vec_sum["importance_mean"] / vec_count).astype(np.float32),
        importance_max=(vec_sum["importance_max"] / vec_count).astype(np.float32),
        log_probs=(lp_sum / vec_count[:, None]).astype(np.float32),
        mean=maps["mean"],
        max=maps["max"],
        apc=maps["apc"],
        rollout=maps["rollout"],
        contacts=maps.get("contacts"),
    )
