"""Protein language models behind one adapter: ESM-2 (fair-esm) and AntiBERTy.

A model spec is a registered name (``antiberty``, ``esm2_t33_650M_UR50D``), a local
``.pt`` checkpoint path, or ``random:<esm2 name>`` (random weights, for tests and
memory benchmarks). Nothing is downloaded: a missing checkpoint fails with the
path of the file expected.

The adapter exposes what the attention and scoring code needs and nothing more:
tokens with one token per residue after a leading special token, the self-attention
modules to hook (with how to read their per-head weights), masked-LM logits, and the
contact head's regression weights where the model has one.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from featvis.protein.sequences import AMINO_ACIDS


class ModelUnavailableError(ValueError):
    """A model spec that names no registered model or whose files are missing."""


@dataclass
class ProteinLM:
    """A masked protein language model, ready for inference (eval mode)."""

    name: str
    module: nn.Module
    num_layers: int
    num_heads: int
    max_residues: int
    token_ids: dict[str, int]  # residue letter -> token id
    cls_id: int
    eos_id: int
    mask_id: int
    attention_modules: list[nn.Module]
    # Per-head weights of one sequence, (heads, T, T), read from a hooked module's output.
    read_heads: Callable[[Any], torch.Tensor]
    # The same output with the weights dropped so nothing downstream keeps them.
    drop_heads: Callable[[Any], Any]
    # Keyword arguments a forward pre-hook sets so the module computes per-head weights.
    head_kwargs: dict[str, Any] = field(default_factory=dict)
    contact_weight: torch.Tensor | None = None  # (layers, heads)
    contact_bias: float = 0.0
    training_note: str = ""
    _logits: Callable[[torch.Tensor], torch.Tensor] | None = None

    def encode(self, sequence: str) -> torch.Tensor:
        """Token ids (1, L + 2): special token, one per residue, end token."""
        ids = [self.cls_id] + [self.token_ids[c] for c in sequence] + [self.eos_id]
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: torch.device | str) -> ProteinLM:
        """Move the model (and the contact weights) to ``device``; returns self."""
        self.module.to(device)
        if self.contact_weight is not None:
            self.contact_weight = self.contact_weight.to(device)
        return self

    @property
    def aa_ids(self) -> torch.Tensor:
        return torch.tensor([self.token_ids[c] for c in AMINO_ACIDS], dtype=torch.long)

    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits (B, T, vocab) without any attention output."""
        assert self._logits is not None
        return self._logits(tokens)


ESM2_ARCHITECTURES = {
    "esm2_t6_8M_UR50D": (6, 320, 20),
    "esm2_t12_35M_UR50D": (12, 480, 20),
    "esm2_t30_150M_UR50D": (30, 640, 20),
    "esm2_t33_650M_UR50D": (33, 1280, 20),
    "esm2_t36_3B_UR50D": (36, 2560, 40),
}

_REGISTRY: dict[str, Callable[[], ProteinLM]] = {}


def register_model(name: str, loader: Callable[[], ProteinLM]) -> None:
    """Make ``load_protein_model(name)`` call ``loader``."""
    _REGISTRY[name] = loader


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def load_protein_model(spec: str, seed: int = 0) -> ProteinLM:
    """Resolve ``spec`` (name, local ``.pt`` path or ``random:<esm2 name>``) to a model."""
    if spec.startswith("random:"):
        return random_esm2(spec.split(":", 1)[1], seed=seed)
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if spec.endswith(".pt") or os.sep in spec:
        return esm2_from_file(Path(spec))
    raise ModelUnavailableError(
        f"unknown protein model {spec!r}; choose one of {available_models()}, "
        "a local ESM-2 .pt checkpoint path, or random:<esm2 name>"
    )


# ---------------------------------------------------------------- ESM-2 (fair-esm)


def _esm_adapter(name: str, model: nn.Module, has_contacts: bool) -> ProteinLM:
    model.eval()
    alphabet = model.alphabet
    weight = None
    bias = 0.0
    if has_contacts:
        regression = model.contact_head.regression
        weight = regression.weight.detach().reshape(model.num_layers, model.attention_heads).clone()
        bias = float(regression.bias.detach()) if regression.bias is not None else 0.0
    return ProteinLM(
        name=name,
        module=model,
        num_layers=model.num_layers,
        num_heads=model.attention_heads,
        max_residues=1022,
        token_ids={c: alphabet.get_idx(c) for c in AMINO_ACIDS},
        cls_id=alphabet.cls_idx,
        eos_id=alphabet.eos_idx,
        mask_id=alphabet.mask_idx,
        attention_modules=[layer.self_attn for layer in model.layers],
        read_heads=lambda out: out[1][:, 0],  # fair-esm gives (heads, B, T, T)
        drop_heads=lambda out: (out[0], None),
        head_kwargs={"need_head_weights": True},
        contact_weight=weight,
        contact_bias=bias,
        training_note="ESM-2 was trained on UniRef50 protein sequences from all kingdoms of life.",
        _logits=lambda tokens: model(tokens)["logits"],
    )


def random_esm2(name: str, seed: int = 0) -> ProteinLM:
    """An ESM-2 architecture by name with random weights (tests, memory benchmarks)."""
    import esm

    if name not in ESM2_ARCHITECTURES:
        raise ModelUnavailableError(f"unknown ESM-2 architecture {name!r}; choose one of {sorted(ESM2_ARCHITECTURES)}")
    layers, dim, heads = ESM2_ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = esm.model.esm2.ESM2(
        num_layers=layers,
        embed_dim=dim,
        attention_heads=heads,
        alphabet=esm.Alphabet.from_architecture("ESM-1b"),
    )
    lm = _esm_adapter(f"random:{name}", model, has_contacts=True)
    lm.training_note = "Random weights: for software tests only; its scores carry no biological meaning."
    return lm


def esm2_from_file(path: Path) -> ProteinLM:
    """A fair-esm checkpoint from disk, with ``<stem>-contact-regression.pt`` when present."""
    import esm

    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(
            f"ESM-2 checkpoint not found: {path}. This machine cannot download it; copy "
            f"{path.name} there (from https://dl.fbaipublicfiles.com/fair-esm/models/{path.name})."
        )
    torch.serialization.add_safe_globals([argparse.Namespace])
    data = torch.load(path, map_location="cpu", weights_only=False)
    regression_path = path.with_name(path.stem + "-contact-regression.pt")
    regression = (
        torch.load(regression_path, map_location="cpu", weights_only=False) if regression_path.is_file() else None
    )
    model, _ = esm.pretrained.load_model_and_alphabet_core(path.stem, data, regression)
    return _esm_adapter(path.stem, model, has_contacts=regression is not None)


def esm2_from_hub(name: str) -> ProteinLM:
    """An ESM-2 checkpoint from the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    return esm2_from_file(Path(torch.hub.get_dir()) / "checkpoints" / f"{name}.pt")


for _name in ESM2_ARCHITECTURES:
    register_model(_name, lambda _name=_name: esm2_from_hub(_name))


# ---------------------------------------------------------------- AntiBERTy


def antiberty() -> ProteinLM:
    """AntiBERTy (MIT, weights ship in the ``antiberty`` wheel): 8-layer BERT on antibodies only."""
    try:
        import antiberty as package
        import transformers
    except ImportError as err:
        raise ModelUnavailableError(f"AntiBERTy needs the antiberty and transformers packages: {err}") from err

    root = Path(package.__file__).parent / "trained_models"
    folder = root / "AntiBERTy_md_smooth"
    weights = folder / "pytorch_model.bin"
    if not weights.is_file():
        raise ModelUnavailableError(f"AntiBERTy weights not found: {weights}")
    config = transformers.BertConfig.from_json_file(str(folder / "config.json"))
    config._attn_implementation = "eager"  # the only implementation that returns per-head weights
    model = transformers.BertForMaskedLM(config)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys:  # the extra keys are its species/chain heads, which we do not use
        raise ModelUnavailableError(f"AntiBERTy checkpoint lacks {result.missing_keys}")
    model.eval()
    vocab = (root / "vocab.txt").read_text().split()
    index = {token: i for i, token in enumerate(vocab)}
    return ProteinLM(
        name="antiberty",
        module=model,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        max_residues=config.max_position_embeddings - 2,
        token_ids={c: index[c] for c in AMINO_ACIDS},
        cls_id=index["[CLS]"],
        eos_id=index["[SEP]"],
        mask_id=index["[MASK]"],
        attention_modules=[layer.attention.self for layer in model.bert.encoder.layer],
        read_heads=lambda out: out[1][0],  # transformers gives (B, heads, T, T)
        drop_heads=lambda out: (out[0], None),
        training_note=(
            "AntiBERTy was trained on antibody sequences only (Observed Antibody Space); "
            "its scores are not meaningful for other proteins."
        ),
        _logits=lambda tokens: model(input_ids=tokens).logits,
    )


register_model("antiberty", antiberty)
