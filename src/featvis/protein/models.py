"""Protein language models behind one adapter: ESM-2 and AntiBERTy.

A model spec is a registered name (``antiberty``, ``esm2_t33_650M_UR50D`` from the torch hub
cache), a fair-esm ``.pt`` checkpoint path (any file name), a Hugging Face ESM-2 folder or
``facebook/esm2_*`` name (from the Hugging Face hub cache), or ``random:<esm2 name>`` (random
weights, for tests and benchmarks). Nothing is downloaded: a missing checkpoint fails with
what was looked for and where. Every ESM-2 runs as transformers' ``EsmForMaskedLM``.

The adapter exposes what the attention and scoring code needs and nothing more:
tokens with one token per residue after a leading special token, the self-attention
modules to hook (with how to read their per-head weights), masked-LM logits, and the
contact head's regression weights where the model has one.
"""

from __future__ import annotations

import argparse
import os
import re
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
    # The pass the attention hooks watch (per-head weights computed); ``_logits`` when None.
    _attention_logits: Callable[[torch.Tensor], torch.Tensor] | None = None

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
        """Masked-LM logits (B, T, vocab) without any attention output (the fastest attention)."""
        assert self._logits is not None
        return self._logits(tokens)

    def attention_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits from a pass whose attention modules compute per-head weights (for hooks)."""
        return (self._attention_logits or self.logits)(tokens)


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
    if spec.endswith(".pt") or Path(spec).is_file():
        return esm2_from_file(Path(spec))
    if Path(spec).is_dir() or spec.startswith("facebook/") or hf_folder(spec) is not None:
        return esm2_from_hf(spec)
    raise ModelUnavailableError(
        f"unknown protein model {spec!r}; choose one of {available_models()}, a fair-esm ESM-2 .pt path, "
        "a Hugging Face ESM-2 folder or facebook/esm2_* name (read from the hub cache), or random:<esm2 name>"
    )


# ---------------------------------------------------------------- ESM-2
# Every ESM-2 runs as transformers' EsmForMaskedLM, whichever format its weights come in:
# per-head weights (eager attention) for the importance pass, scaled-dot-product attention
# (no weights kept) for the logits-only passes of the scan.

ESM_TOKENS = ["<cls>", "<pad>", "<eos>", "<unk>", *"LAGVSERTIDPKQNFYMHWCXBUZO.-", "<null_1>", "<mask>"]
HF_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
ESM2_NOTE = "ESM-2 was trained on UniRef50 protein sequences from all kingdoms of life."


def _hf_esm_adapter(name: str, model: nn.Module, has_contacts: bool) -> ProteinLM:
    model.eval()
    config = model.config
    config._attn_implementation = "eager"  # per-head weights for the hooks; the logits pass switches to sdpa
    index = {token: i for i, token in enumerate(ESM_TOKENS)}
    weight, bias = None, 0.0
    if has_contacts:
        regression = model.esm.contact_head.regression
        weight = regression.weight.detach().reshape(config.num_hidden_layers, config.num_attention_heads).clone()
        bias = float(regression.bias.detach()) if regression.bias is not None else 0.0

    def logits(tokens: torch.Tensor) -> torch.Tensor:
        config._attn_implementation = "sdpa"  # output probabilities only: the fastest attention
        try:
            return model(input_ids=tokens).logits
        finally:
            config._attn_implementation = "eager"

    return ProteinLM(
        name=name,
        module=model,
        num_layers=config.num_hidden_layers,
        num_heads=config.num_attention_heads,
        max_residues=config.max_position_embeddings - 4,  # 1026 positions: 1022 residues, as fair-esm
        token_ids={c: index[c] for c in AMINO_ACIDS},
        cls_id=index["<cls>"],
        eos_id=index["<eos>"],
        mask_id=index["<mask>"],
        attention_modules=[layer.attention.self for layer in model.esm.encoder.layer],
        read_heads=lambda out: out[1][0],  # transformers gives (B, heads, T, T)
        drop_heads=lambda out: (out[0], None),
        contact_weight=weight,
        contact_bias=bias,
        training_note=ESM2_NOTE,
        _logits=logits,
        _attention_logits=lambda tokens: model(input_ids=tokens).logits,
    )


def esm2_config(layers: int, dim: int, heads: int, **extra: Any):
    """transformers' EsmConfig of an ESM-2 architecture (as the facebook/esm2_* configs)."""
    import transformers

    return transformers.EsmConfig(
        vocab_size=len(ESM_TOKENS), hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * dim, max_position_embeddings=1026, position_embedding_type="rotary",
        token_dropout=True, mask_token_id=ESM_TOKENS.index("<mask>"), pad_token_id=ESM_TOKENS.index("<pad>"),
        emb_layer_norm_before=False, layer_norm_eps=1e-5, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, **extra,
    )  # fmt: skip


_FAIR_TO_HF = {
    "self_attn.q_proj": "attention.self.query",
    "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value",
    "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.LayerNorm",
    "fc1": "intermediate.dense",
    "fc2": "output.dense",
    "final_layer_norm": "LayerNorm",
}


def fair_state_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A fair-esm ESM-2 state dict (prefixes removed) in transformers' EsmForMaskedLM names."""
    out = {}
    for key, value in state.items():
        if key.endswith("rot_emb.inv_freq"):
            continue  # computed from the configuration
        if key.startswith("layers."):
            _, i, rest = key.split(".", 2)
            module, param = rest.rsplit(".", 1)
            out[f"esm.encoder.layer.{i}.{_FAIR_TO_HF[module]}.{param}"] = value
        elif key == "embed_tokens.weight":
            out["esm.embeddings.word_embeddings.weight"] = value
        elif key.startswith(("emb_layer_norm_after.", "contact_head.")):
            prefix = "esm.encoder." if key.startswith("emb_") else "esm."
            out[prefix + key] = value
        elif key == "lm_head.weight":
            out["lm_head.decoder.weight"] = value
        else:  # lm_head.bias, lm_head.dense.*, lm_head.layer_norm.*
            out[key] = value
    return out


def hf_from_fair_state(state: dict[str, torch.Tensor], layers: int, dim: int, heads: int):
    """An EsmForMaskedLM holding a fair-esm ESM-2's weights; its contact head kept when the state has one."""
    import transformers

    converted = fair_state_to_hf(state)
    model = transformers.EsmForMaskedLM(esm2_config(layers, dim, heads))
    result = model.load_state_dict(converted, strict=False)
    contact = {"esm.contact_head.regression.weight", "esm.contact_head.regression.bias"}
    computed = {"lm_head.decoder.weight", "esm.rotary_embeddings.inv_freq"}  # tied to the embedding; from config
    missing = set(result.missing_keys) - contact - computed
    if missing or result.unexpected_keys:
        raise ModelUnavailableError(
            f"not an ESM-2 state dict: missing {sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]}"
        )
    return model, not (contact & set(result.missing_keys))


def fair_esm2_module(name: str, seed: int = 0) -> nn.Module:
    """fair-esm's own ESM2 module of an architecture, seeded random weights (tests, benchmarks)."""
    import esm

    if name not in ESM2_ARCHITECTURES:
        raise ModelUnavailableError(f"unknown ESM-2 architecture {name!r}; choose one of {sorted(ESM2_ARCHITECTURES)}")
    layers, dim, heads = ESM2_ARCHITECTURES[name]
    torch.manual_seed(seed)
    model = esm.model.esm2.ESM2(
        num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=esm.Alphabet.from_architecture("ESM-1b")
    )
    return model.eval()


def random_esm2(name: str, seed: int = 0) -> ProteinLM:
    """An ESM-2 architecture by name with random weights (tests, memory benchmarks): the same
    seeded weights fair-esm's ESM2 gets, run as transformers' ESM."""
    fair = fair_esm2_module(name, seed)
    model, _ = hf_from_fair_state(fair.state_dict(), fair.num_layers, fair.embed_dim, fair.attention_heads)
    lm = _hf_esm_adapter(f"random:{name}", model, has_contacts=True)
    lm.training_note = "Random weights: for software tests only; its scores carry no biological meaning."
    return lm


def _fair_architecture(data: Any, path: Path) -> tuple[int, int, int]:
    """(layers, dim, heads) from a fair-esm checkpoint's own ``cfg`` (v2) or ``args`` (ESM-2 saved
    the old way), whatever the file is called: fair-esm itself dispatches on the file name."""
    if not isinstance(data, dict) or "model" not in data:
        raise ModelUnavailableError(f"{path} is not a fair-esm checkpoint (no 'model' state dict in it)")
    cfg = (data.get("cfg") or {}).get("model") if isinstance(data.get("cfg"), dict) else None
    cfg = cfg or data.get("args")
    try:
        return int(cfg.encoder_layers), int(cfg.encoder_embed_dim), int(cfg.encoder_attention_heads)
    except AttributeError:
        raise ModelUnavailableError(
            f"{path} has no ESM-2 configuration (cfg.model or args with encoder_layers, encoder_embed_dim, "
            "encoder_attention_heads); featvis reads ESM-2 checkpoints only"
        ) from None


def esm2_from_file(path: str | os.PathLike) -> ProteinLM:
    """A fair-esm ESM-2 checkpoint from disk (any file name), with ``<stem>-contact-regression.pt``
    when present."""
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(
            f"ESM-2 checkpoint not found: {path} (looked for a fair-esm .pt file at {path.resolve()})"
        )
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line report
        raise ModelUnavailableError(f"cannot read ESM-2 checkpoint {path}: {type(err).__name__}: {err}") from None
    layers, dim, heads = _fair_architecture(data, path)
    prefixes = re.compile(r"^(encoder\.sentence_encoder\.|encoder\.)")
    state = {prefixes.sub("", k): v for k, v in data["model"].items()}
    regression_path = path.with_name(path.stem + "-contact-regression.pt")
    if regression_path.is_file():
        state |= torch.load(regression_path, map_location="cpu", weights_only=False)["model"]
    model, has_contacts = hf_from_fair_state(state, layers, dim, heads)
    return _hf_esm_adapter(path.stem, model, has_contacts)


def esm2_from_hub(name: str) -> ProteinLM:
    """An ESM-2 checkpoint from the torch hub cache (``$TORCH_HOME/hub/checkpoints``)."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / f"{name}.pt"
    if not path.is_file():
        raise ModelUnavailableError(
            f"ESM-2 {name} not found: looked for {path} (the torch hub cache). Nothing is downloaded: "
            f"copy fair-esm's {name}.pt there, or set attention.model to its path or to a Hugging Face folder"
        )
    return esm2_from_file(path)


def hf_folder(spec: str) -> Path | None:
    """The local folder of a Hugging Face model: ``spec`` itself, or its snapshot in the hub cache."""
    if Path(spec).is_dir():
        return Path(spec)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", spec) or Path(spec).exists():
        return None
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{spec.replace('/', '--')}"
    ref = repo / "refs" / "main"
    if ref.is_file():
        return repo / "snapshots" / ref.read_text().strip()
    snapshots = sorted((repo / "snapshots").glob("*")) if (repo / "snapshots").is_dir() else []
    return snapshots[-1] if snapshots else repo


def check_hf_folder(folder: Path, spec: str) -> None:
    """Stop with what is missing from a Hugging Face ESM-2 folder (config and weights)."""
    where = spec
    if str(folder) != spec:
        where = f"{spec} (no folder {spec} here; looked in the Hugging Face hub cache: {folder})"
    if not folder.is_dir():
        raise ModelUnavailableError(
            f"Hugging Face model {where} not found. Nothing is downloaded: save it there first "
            "(`hf download` or `save_pretrained`), or give its folder"
        )
    if not (folder / "config.json").is_file():
        raise ModelUnavailableError(f"Hugging Face model {where} has no config.json")
    if not any((folder / name).is_file() for name in HF_WEIGHTS):
        raise ModelUnavailableError(f"Hugging Face model {where} has no weights ({' or '.join(HF_WEIGHTS[:2])})")


def esm2_from_hf(spec: str) -> ProteinLM:
    """An ESM-2 in Hugging Face format: a ``save_pretrained`` folder or a ``facebook/esm2_*`` name in the
    hub cache, read offline."""
    import transformers

    folder = hf_folder(spec)
    check_hf_folder(folder, spec)
    try:
        model, info = transformers.EsmForMaskedLM.from_pretrained(
            str(folder), local_files_only=True, output_loading_info=True, attn_implementation="eager"
        )
    except Exception as err:  # noqa: BLE001 - any unreadable folder gets the same one-line report
        raise ModelUnavailableError(f"cannot read Hugging Face model {spec}: {type(err).__name__}: {err}") from None
    contact = {"esm.contact_head.regression.weight", "esm.contact_head.regression.bias"}
    missing = set(info["missing_keys"]) - contact - {"esm.rotary_embeddings.inv_freq"}
    if missing:
        raise ModelUnavailableError(f"Hugging Face model {spec} lacks weights {sorted(missing)[:5]}")
    if model.config.vocab_size != len(ESM_TOKENS) or model.config.position_embedding_type != "rotary":
        raise ModelUnavailableError(f"{spec} is not an ESM-2 model (vocabulary or position embedding differs)")
    return _hf_esm_adapter(folder.name if Path(spec).is_dir() else spec, model, not contact & set(info["missing_keys"]))


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
