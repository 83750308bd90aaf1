"""config/examples/tp53.yaml: TP53 (UniProt P04637) with six hotspot variants, run with random weights,
and its report's wording checked against the clinicians' vocabulary (importance scores, model layers)."""

import re

import pytest
import yaml

from featvis.protein.checks import check_entries
from featvis.protein.model_checks import ProteinModelError, inspect_model
from featvis.protein.report import AttentionParams, compute_protein, render_protein
from featvis.protein.table import read_table
from workflow_helpers import ROOT

EXAMPLE = yaml.safe_load((ROOT / "config/examples/tp53.yaml").read_text())["attention"]
SCHEMA = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())


@pytest.fixture(scope="module")
def tp53_entry():
    (entry,) = read_table(ROOT / EXAMPLE["variants"], base=ROOT)
    return entry


def test_the_example_table_holds_p53_and_its_hotspots(tp53_entry):
    entry = tp53_entry
    assert set(EXAMPLE) <= set(SCHEMA["properties"]["attention"]["properties"])
    assert len(entry.sequence) == 393 and entry.sequence.startswith("MEEPQSDPSVEPPLSQETFSDLWKLLPENN")
    assert [v.label for v in entry.variants] == ["R175H", "G245S", "R248Q", "R249S", "R273H", "R282W"]
    assert [(d.name, d.start, d.end) for d in entry.domains] == [("DNA-binding", 94, 292),
                                                                 ("tetramerization", 325, 356)]  # fmt: skip
    assert entry.sequence[175:179] == "CPHH" and entry.sequence[237] == "C" and entry.sequence[241] == "C"  # zinc site
    table = (ROOT / EXAMPLE["variants"]).read_text()
    assert re.search(r"^# TP53\t.*AF-P04637-F1-model_v4\.pdb:A", table, flags=re.M)  # where AlphaFold's file goes


def test_the_example_model_missing_from_the_cache_stops_at_start(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ProteinModelError, match=r"attention.model 'facebook/esm2_t33_650M_UR50D'.*hub cache"):
        inspect_model(EXAMPLE["model"], tmp_path / "cache")


def test_the_example_runs_with_random_weights_and_speaks_the_clinicians_language(tiny_esm, tp53_entry, tmp_path):
    estimates = check_entries([tp53_entry], "wildtype", EXAMPLE["scan_budget"], 0.9,
                              {"layers": 6, "dim": 320, "vocab": 33, "max_residues": 1022,
                               "operations_per_second": 1e9})  # fmt: skip
    assert estimates[0].importance_passes == 7
    params = AttentionParams(scan="wildtype", logo_window=2, top_residues=5)  # the masked scan is the slow part
    arrays, scores = compute_protein(tiny_esm, tp53_entry, params)
    assert list(scores.variant) == ["R175H", "G245S", "R248Q", "R249S", "R273H", "R282W"]
    page = render_protein(tp53_entry, arrays, scores, params, tmp_path / "report", tiny_esm.name,
                          tiny_esm.training_note).read_text().lower()  # fmt: skip
    text = re.sub(r"<[^>]+>", " ", page)
    assert "importance score" in text and "model layer" in text
    for jargon in ("attention weight", "transformer", "self-attention", "softmax", "attention head"):
        assert jargon not in text, jargon
    assert "random weights" in text and "not a clinical classification" in text
