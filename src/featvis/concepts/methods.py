"""Dictionary-learning methods, a registry: ``nmf`` and ``topk_sae``.

Each method fits a :class:`Dictionary` on an (N, C) sample of a layer's activations (positions as
rows, channels as columns) and encodes any (M, C) block into non-negative (M, K) codes. The atoms
(K, C) are concept directions in the layer's activation space; ``input_transform`` records how the
activations were made non-negative for NMF (``relu`` clamps at zero, ``shift: min`` subtracts the
per-channel minimum of the sample), so encoding applies the same transform.

Register a method with :func:`register`: a function ``(x, n_concepts, settings, seed) -> Dictionary``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

EPS = 1e-10


class ConceptError(ValueError):
    """A concept fit asked for something the activations cannot give."""


@dataclass
class Dictionary:
    """A fitted dictionary: ``atoms`` (K, C) unit-norm rows for the SAE (NMF atoms scaled by the
    codes' scale), the encoder's parameters, and the transform applied to activations first."""

    method: str
    atoms: torch.Tensor  # (K, C) decoder rows
    encoder: dict[str, torch.Tensor] = field(default_factory=dict)
    shift: torch.Tensor | None = None  # (C,) subtracted before encoding (NMF shift: min; SAE pre-bias)
    relu: bool = False  # activations clamped at zero before encoding (NMF relu: true)
    settings: dict[str, Any] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)  # fit diagnostics (losses, dead latents)

    @property
    def n_concepts(self) -> int:
        return int(self.atoms.shape[0])

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.relu:
            x = x.clamp_min(0)
        if self.method == "nmf" and self.shift is not None:
            x = (x - self.shift).clamp_min(0)  # positions below the sample's minimum clamp at zero
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(M, C) activations -> (M, K) non-negative codes."""
        return ENCODERS[self.method](self, self.prepare(x))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(M, K) codes -> (M, C), in the space the dictionary was fitted in (after the transform)."""
        out = codes @ self.atoms
        if self.method == "topk_sae" and self.shift is not None:
            out = out + self.shift
        return out

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save (``np.savez``); :func:`from_state` reads them back."""
        out = {"atoms": self.atoms.numpy(), "method": np.array(self.method), "relu": np.array(self.relu)}
        if self.shift is not None:
            out["shift"] = self.shift.numpy()
        out.update({f"encoder_{k}": v.numpy() for k, v in self.encoder.items()})
        return out


def from_state(state: Mapping[str, np.ndarray]) -> Dictionary:
    encoder = {k.removeprefix("encoder_"): torch.from_numpy(np.asarray(v)) for k, v in state.items()
               if k.startswith("encoder_")}
    shift = torch.from_numpy(np.asarray(state["shift"])) if "shift" in state else None
    return Dictionary(str(state["method"]), torch.from_numpy(np.asarray(state["atoms"])), encoder, shift,
                      bool(state["relu"]))


Fit = Callable[[torch.Tensor, int, Mapping[str, Any], int], Dictionary]
METHODS: dict[str, Fit] = {}
ENCODERS: dict[str, Callable[[Dictionary, torch.Tensor], torch.Tensor]] = {}


def register(name: str, fit: Fit, encode: Callable[[Dictionary, torch.Tensor], torch.Tensor]) -> None:
    """Add a method: ``fit(x, n_concepts, settings, seed)`` and ``encode(dictionary, x)``."""
    METHODS[name] = fit
    ENCODERS[name] = encode


def fit(method: str, x: torch.Tensor, n_concepts: int, settings: Mapping[str, Any], seed: int) -> Dictionary:
    """Fit ``method`` on the (N, C) sample ``x``; every random choice comes from ``seed``."""
    if method not in METHODS:
        raise ConceptError(f"unknown concept method {method!r}; known: {', '.join(sorted(METHODS))}")
    if len(x) < n_concepts:
        raise ConceptError(f"{len(x)} sampled positions for {n_concepts} concepts: a dictionary needs at least as "
                           "many positions as concepts; use fewer concepts, more images or more positions_per_image")
    if not bool(torch.isfinite(x).all()):
        raise ConceptError("the sampled activations hold NaN or infinite values: the model is broken at this layer")
    if float(x.abs().max()) == 0.0:
        raise ConceptError("every sampled activation is zero: there is nothing to learn a dictionary from "
                           "(the layer is dead on this dataset)")
    with one_thread():
        dictionary = METHODS[method](x.float(), int(n_concepts), dict(settings), int(seed))
    dictionary.settings = {**dict(settings), "n_concepts": int(n_concepts), "seed": int(seed)}
    return dictionary


@contextmanager
def one_thread() -> Iterator[None]:
    """Fits multiply small matrices (positions x channels x concepts): a second thread only adds
    synchronisation (tenfold slower on two busy cores), and one thread makes the fit independent of
    the job's thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- NMF -----------------------------------------------------------------------------------------

def nonnegative_input(x: torch.Tensor, settings: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """The sample made non-negative as ``settings`` says (``relu: true`` or ``shift: min``); a sample
    with negative values and neither is refused."""
    relu = bool(settings.get("relu", False))
    if relu:
        x = x.clamp_min(0)
    shift = None
    if settings.get("shift") == "min":
        shift = x.amin(0)
        x = x - shift
    if float(x.min()) < 0:
        raise ConceptError(f"nmf needs non-negative activations, but this layer has values down to "
                           f"{float(x.min()):.4g}; set concepts.relu: true (keep the positive part) or "
                           "concepts.shift: min (subtract each channel's minimum), or use topk_sae")
    return x, shift, relu


def _hals_codes(x: torch.Tensor, z: torch.Tensor, atoms: torch.Tensor, iterations: int) -> torch.Tensor:
    """HALS updates of the codes with the atoms fixed (Gillis 2014): exact per-column minimisers."""
    c, b = x @ atoms.T, atoms @ atoms.T
    for _ in range(iterations):
        for k in range(z.shape[1]):
            z[:, k] = ((c[:, k] - z @ b[:, k] + z[:, k] * b[k, k]) / (b[k, k] + EPS)).clamp_min(0)
    return z


def _hals_atoms(x: torch.Tensor, z: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    m, n = z.T @ x, z.T @ z
    for k in range(atoms.shape[0]):
        atoms[k] = ((m[k] - n[k] @ atoms + atoms[k] * n[k, k]) / (n[k, k] + EPS)).clamp_min(0)
    return atoms


def fit_nmf(x: torch.Tensor, n_concepts: int, settings: Mapping[str, Any], seed: int) -> Dictionary:
    """NMF by HALS on the sample (the sample is bounded by the position budget, so a full pass over
    it is a few matrix products); random non-negative start from ``seed``, ``steps`` iterations.
    Atoms are returned with unit norm, codes scaled to match."""
    x, shift, relu = nonnegative_input(x, settings)
    gen = torch.Generator().manual_seed(seed)
    scale = math.sqrt(float(x.mean()) / n_concepts)
    z = scale * torch.rand(len(x), n_concepts, generator=gen)
    atoms = scale * torch.rand(n_concepts, x.shape[1], generator=gen)
    losses = []
    for step in range(int(settings.get("steps", 200))):
        z = _hals_codes(x, z, atoms, 1)
        atoms = _hals_atoms(x, z, atoms)
        if step % 10 == 0:
            losses.append(float(((x - z @ atoms) ** 2).mean()))
    atoms = atoms / atoms.norm(dim=1, keepdim=True).clamp_min(EPS)
    return Dictionary("nmf", atoms, {"iterations": torch.tensor(int(settings.get("encode_steps", 30)))}, shift, relu,
                      history={"loss": losses})


def encode_nmf(dictionary: Dictionary, x: torch.Tensor) -> torch.Tensor:
    """Non-negative least squares codes by HALS from a projected start (deterministic)."""
    atoms = dictionary.atoms
    z = (x @ atoms.T).clamp_min(0) / (atoms @ atoms.T).diagonal().clamp_min(EPS)
    z = z / max(1.0, float(dictionary.n_concepts) ** 0.5)
    return _hals_codes(x, z, atoms, int(dictionary.encoder.get("iterations", torch.tensor(30))))


register("nmf", fit_nmf, encode_nmf)


# --- TopK sparse autoencoder ----------------------------------------------------------------------

def _topk_codes(pre: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest pre-activations of each row (ReLU'd), zero the rest."""
    values, index = pre.topk(min(k, pre.shape[1]), dim=1)
    return torch.zeros_like(pre).scatter_(1, index, values.clamp_min(0))


def fit_topk_sae(x: torch.Tensor, n_concepts: int, settings: Mapping[str, Any], seed: int) -> Dictionary:
    """A TopK SAE (Gao et al. 2024): codes = TopK(ReLU(W_enc (x - b) + b_enc)), x_hat = codes D + b.

    The decoder's rows are kept at unit norm (renormalised after every step); the encoder starts as
    the decoder's transpose; ``b`` starts at the sample mean. A latent that has not fired for
    ``dead_after`` positions is dead; the auxiliary loss (AuxK) asks the ``aux_k`` most active dead
    latents to reconstruct what the live ones miss, weighted ``aux_weight``. Minibatches and the
    start are drawn from ``seed``."""
    k = int(settings.get("k", 4))
    steps, batch = int(settings.get("steps", 1000)), int(settings.get("batch_size", 1024))
    aux_k = int(settings.get("aux_k", max(1, x.shape[1] // 2)))
    aux_weight = float(settings.get("aux_weight", 1 / 32))
    dead_after = int(settings.get("dead_after", max(10 * batch, len(x))))
    gen = torch.Generator().manual_seed(seed)
    c = x.shape[1]
    scale = x.std(0).mean().clamp_min(EPS)
    decoder = torch.randn(n_concepts, c, generator=gen)
    decoder = decoder / decoder.norm(dim=1, keepdim=True)
    decoder = torch.nn.Parameter(decoder)
    encoder = torch.nn.Parameter(decoder.detach().T.clone())  # (C, K): the decoder's transpose
    enc_bias = torch.nn.Parameter(torch.zeros(n_concepts))
    bias = torch.nn.Parameter(x.mean(0).clone())
    optimizer = torch.optim.Adam([decoder, encoder, enc_bias, bias], lr=float(settings.get("lr", 1e-3)) * float(scale))
    since_fired = torch.zeros(n_concepts, dtype=torch.long)
    losses, dead_counts = [], []
    variance = ((x - x.mean(0)) ** 2).sum(1).mean().clamp_min(EPS)
    for step in range(steps):
        rows = torch.randint(len(x), (min(batch, len(x)),), generator=gen)
        xb = x[rows]
        pre = (xb - bias) @ encoder + enc_bias
        codes = _topk_codes(pre, k)
        recon = codes @ decoder + bias
        residual = xb - recon
        loss = (residual ** 2).sum(1).mean() / variance
        fired = (codes > 0).any(0)
        since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + len(xb))
        dead = since_fired >= dead_after
        if bool(dead.any()):
            dead_pre = torch.where(dead, pre, torch.full_like(pre, -torch.inf))
            aux_codes = _topk_codes(dead_pre, min(aux_k, int(dead.sum())))
            aux_codes = torch.nan_to_num(aux_codes, neginf=0.0)
            aux = ((residual.detach() - aux_codes @ decoder) ** 2).sum(1).mean() / variance
            loss = loss + aux_weight * aux
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            decoder /= decoder.norm(dim=1, keepdim=True).clamp_min(EPS)
        if step % 50 == 0 or step == steps - 1:
            losses.append(float(loss.detach()))
            dead_counts.append(int(dead.sum()))
    state = {"weight": encoder.detach().clone(), "bias": enc_bias.detach().clone(), "k": torch.tensor(k)}
    return Dictionary("topk_sae", decoder.detach().clone(), state, bias.detach().clone(), False,
                      history={"loss": losses, "dead_latents": dead_counts, "dead_after": dead_after})


def encode_topk_sae(dictionary: Dictionary, x: torch.Tensor) -> torch.Tensor:
    enc = dictionary.encoder
    pre = (x - dictionary.shift) @ enc["weight"] + enc["bias"]
    return _topk_codes(pre, int(enc["k"]))


register("topk_sae", fit_topk_sae, encode_topk_sae)
