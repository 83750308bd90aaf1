import argparse

import numpy as np
import pytest
import torch

from featvis.protein.attention import summarize_window
from featvis.protein.models import ModelUnavailableError, esm2_from_file, load_protein_model


def test_unknown_model_lists_the_choices():
    with pytest.raises(ModelUnavailableError, match="antiberty"):
        load_protein_model("esm99")


def test_missing_checkpoint_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelUnavailableError, match=r"esm2_t33_650M_UR50D\.pt"):
        load_protein_model("esm2_t33_650M_UR50D")


def _save_checkpoint(lm, path, with_regression):
    """Write a fair-esm style checkpoint (v2 layout) of a random model."""
    state = {f"encoder.sentence_encoder.{k}": v for k, v in lm.module.state_dict().items() if "contact_head" not in k}
    cfg = {
        "model": argparse.Namespace(
            encoder_layers=6, encoder_embed_dim=320, encoder_attention_heads=20, token_dropout=True
        )
    }
    torch.save({"model": state, "cfg": cfg}, path)
    if with_regression:
        regression = {k: v for k, v in lm.module.state_dict().items() if "contact_head" in k}
        torch.save({"model": regression}, path.with_name(path.stem + "-contact-regression.pt"))


@pytest.mark.parametrize("with_regression", [True, False])
def test_local_checkpoint_roundtrip(tiny_esm, tmp_path, with_regression, sequence):
    path = tmp_path / "esm2_t6_8M_UR50D.pt"
    _save_checkpoint(tiny_esm, path, with_regression)
    loaded = esm2_from_file(path)
    assert (loaded.contact_weight is not None) == with_regression
    a, b = summarize_window(tiny_esm, sequence[:30]), summarize_window(loaded, sequence[:30])
    np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-7)


def test_antiberty_real_weights_predict_antibody_residues(antiberty_lm):
    lm = antiberty_lm
    heavy = (
        "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAV"
        "YYCSRWGGDGFYAMDYWGQGTLVTVSS"
    )
    s = summarize_window(lm, heavy)
    assert s.importance_mean.shape == (8, len(heavy))
    # Trained weights recover most framework residues of a human antibody from context.
    predicted = "".join("ACDEFGHIKLMNPQRSTVWY"[i] for i in s.log_probs.argmax(1))
    agreement = np.mean([p == c for p, c in zip(predicted, heavy, strict=True)])
    assert agreement > 0.8
    assert "antibod" in lm.training_note


def test_antiberty_streamed_maps_equal_transformers_attentions(antiberty_lm):
    lm = antiberty_lm
    light = (
        "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"
    )
    s = summarize_window(lm, light)
    with torch.no_grad():
        out = lm.module(input_ids=lm.encode(light), output_attentions=True)
    heads = torch.stack(out.attentions)[:, 0].double().numpy()  # (layers, heads, T, T)
    np.testing.assert_allclose(s.mean, heads.mean(1).mean(0)[1:-1, 1:-1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(s.max, heads.max(1).mean(0)[1:-1, 1:-1], rtol=1e-5, atol=1e-7)
    assert s.contacts is None


def test_esm2_by_name_from_the_hub_cache(tiny_esm, tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    _save_checkpoint(tiny_esm, tmp_path / "checkpoints" / "esm2_t6_8M_UR50D.pt", with_regression=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    lm = load_protein_model("esm2_t6_8M_UR50D")
    assert lm.name == "esm2_t6_8M_UR50D" and lm.num_layers == 6
    torch.testing.assert_close(lm.contact_weight, tiny_esm.contact_weight)
