import argparse

import numpy as np
import pytest
import torch

from featvis.protein.attention import summarize, summarize_window
from featvis.protein.models import ModelUnavailableError, esm2_from_file, hf_from_fair_state, load_protein_model
from featvis.protein.scan import masked_scan_log_probs


def test_unknown_model_lists_the_choices():
    with pytest.raises(ModelUnavailableError, match="antiberty"):
        load_protein_model("esm99")


def test_missing_checkpoint_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelUnavailableError, match=r"esm2_t33_650M_UR50D\.pt"):
        load_protein_model("esm2_t33_650M_UR50D")


def _save_checkpoint(module, path, with_regression, key="cfg"):
    """Write a fair-esm checkpoint of ``module`` (fair-esm's ESM2): ``cfg`` (v2 layout) or ``args`` (older)."""
    state = {f"encoder.sentence_encoder.{k}": v for k, v in module.state_dict().items() if "contact_head" not in k}
    arch = argparse.Namespace(encoder_layers=module.num_layers, encoder_embed_dim=module.embed_dim,
                              encoder_attention_heads=module.attention_heads, token_dropout=True)  # fmt: skip
    torch.save({"model": state, key: {"model": arch} if key == "cfg" else arch}, path)
    if with_regression:
        regression = {k: v for k, v in module.state_dict().items() if "contact_head" in k}
        torch.save({"model": regression}, path.with_name(path.stem + "-contact-regression.pt"))


@pytest.fixture(scope="module")
def little_fair():
    """A seeded random fair-esm ESM-2, 2 layers of width 64: small enough to save and reload in each test."""
    import esm

    torch.manual_seed(3)
    model = esm.model.esm2.ESM2(num_layers=2, embed_dim=64, attention_heads=4,
                                alphabet=esm.Alphabet.from_architecture("ESM-1b"))  # fmt: skip
    return model.eval()


@pytest.fixture(scope="module")
def both_formats(little_fair, tmp_path_factory):
    """The same weights as a fair-esm .pt (with contact regression) and as a Hugging Face folder."""
    root = tmp_path_factory.mktemp("esm2")
    _save_checkpoint(little_fair, root / "esm2_little.pt", with_regression=True)
    hf, _ = hf_from_fair_state(little_fair.state_dict(), 2, 64, 4)
    hf.save_pretrained(root / "esm2_little_hf")
    return root / "esm2_little.pt", root / "esm2_little_hf"


@pytest.mark.parametrize("with_regression", [True, False])
def test_local_checkpoint_roundtrip(tiny_esm, tiny_fair, tmp_path, with_regression, sequence):
    path = tmp_path / "esm2_t6_8M_UR50D.pt"
    _save_checkpoint(tiny_fair, path, with_regression)
    loaded = esm2_from_file(path)
    assert (loaded.contact_weight is not None) == with_regression
    a, b = summarize_window(tiny_esm, sequence[:30]), summarize_window(loaded, sequence[:30])
    np.testing.assert_allclose(a.log_probs, b.log_probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-5, atol=1e-7)


def test_fair_esm_and_hugging_face_give_equal_scores(both_formats, little_fair, sequence):
    fair_path, folder = both_formats
    fair, hf = load_protein_model(str(fair_path)), load_protein_model(str(folder))
    assert fair.contact_weight is not None and hf.contact_weight is not None
    seq = sequence[:40]
    a, b = summarize(fair, seq), summarize(hf, seq)
    for name in ("importance_mean", "importance_max", "mean", "max", "apc", "rollout", "contacts", "log_probs"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(masked_scan_log_probs(fair, seq), masked_scan_log_probs(hf, seq), atol=1e-5)
    # and both equal fair-esm's own forward pass (the reference implementation)
    with torch.no_grad():
        ref = little_fair(fair.encode(seq), need_head_weights=True)
    heads = ref["attentions"][0, :, :, 1:-1, 1:-1].double().numpy()
    np.testing.assert_allclose(b.mean, heads.mean(1).mean(0), rtol=1e-4, atol=1e-6)


def test_renamed_fair_esm_checkpoint_loads(both_formats, little_fair, tmp_path, sequence):
    renamed = tmp_path / "my_model_v2.pt"  # fair-esm would send this name to its ESM-1 loader
    renamed.write_bytes(both_formats[0].read_bytes())
    old_layout = tmp_path / "final.pt"
    _save_checkpoint(little_fair, old_layout, False, "args")  # its configuration under args
    for path in (renamed, old_layout):
        lm = load_protein_model(str(path))
        assert lm.num_layers == 2 and lm.num_heads == 4
        assert np.isfinite(summarize_window(lm, sequence[:20]).log_probs).all()


@pytest.mark.parametrize("remove", ["config.json", "model.safetensors"])
def test_hugging_face_folder_missing_a_file_names_it(both_formats, tmp_path, remove):
    import shutil

    folder = tmp_path / "esm2_broken"
    shutil.copytree(both_formats[1], folder)
    (folder / remove).unlink()
    expected = "config.json" if remove == "config.json" else "no weights"
    with pytest.raises(ModelUnavailableError, match=expected):
        load_protein_model(str(folder))


def test_hugging_face_name_from_the_hub_cache(both_formats, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    repo = tmp_path / "models--facebook--esm2_little"
    shutil.copytree(both_formats[1], repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    lm = load_protein_model("facebook/esm2_little")
    assert lm.name == "facebook/esm2_little" and lm.num_layers == 2
    with pytest.raises(ModelUnavailableError, match=r"facebook/esm2_t33_650M_UR50D.*hub cache"):
        load_protein_model("facebook/esm2_t33_650M_UR50D")


def test_unreadable_checkpoint_says_so(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ModelUnavailableError, match=r"cannot read ESM-2 checkpoint .*model\.pt"):
        load_protein_model(str(path))


def test_missing_checkpoint_builds_no_download_address(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not found") as caught:
        load_protein_model(str(tmp_path / "mine.pt"))
    assert "http" not in str(caught.value)


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


def test_esm2_by_name_from_the_hub_cache(tiny_esm, tiny_fair, tmp_path, monkeypatch):
    (tmp_path / "checkpoints").mkdir()
    _save_checkpoint(tiny_fair, tmp_path / "checkpoints" / "esm2_t6_8M_UR50D.pt", with_regression=True)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    lm = load_protein_model("esm2_t6_8M_UR50D")
    assert lm.name == "esm2_t6_8M_UR50D" and lm.num_layers == 6
    torch.testing.assert_close(lm.contact_weight, tiny_esm.contact_weight)


def test_start_check_inspects_once_then_reads_the_cache_until_the_file_changes(both_formats, tmp_path):
    import shutil

    from featvis.protein.model_checks import ProteinModelError, inspect_model

    path = tmp_path / "renamed_checkpoint.pt"
    shutil.copyfile(both_formats[0], path)
    first = inspect_model(str(path), tmp_path / "cache", threads=1, batch=2)
    assert (first["layers"], first["dim"], first["vocab"], first["max_residues"]) == (2, 64, 33, 1022)
    assert first["operations_per_second"] > 0 and first["calibration"]["batch"] == 2
    assert len(list((tmp_path / "cache").glob("protein-*.json"))) == 1
    assert inspect_model(str(path), tmp_path / "cache", threads=1, batch=2) == first  # read, not measured again
    path.unlink()  # the model file gone: the cache no longer holds and the start check says what is missing
    missing = r"attention.model '.*renamed_checkpoint.pt': ESM-2 checkpoint not found"
    with pytest.raises(ProteinModelError, match=missing):
        inspect_model(str(path), tmp_path / "cache", threads=1, batch=2)
