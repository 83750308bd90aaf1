"""End to end: the attention rules under Snakemake, on a random ESM-2 and a generated structure."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from featvis.protein.structure import ideal_helix, write_ca_pdb

ROOT = Path(__file__).resolve().parents[2]
SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQ"


@pytest.mark.integration
def test_attention_rules_end_to_end(tmp_path):
    write_ca_pdb(tmp_path / "helix.pdb", SEQ, ideal_helix(len(SEQ)))
    (tmp_path / "p1.fasta").write_text(">p1\n" + SEQ + "\n")
    (tmp_path / "proteins.tsv").write_text(
        "id\tsequence\tvariants\tpdb\tdomains\n"
        f"p1\tp1.fasta\tK2A;p.Arg10His\thelix.pdb:A\tN-term:1-20;rest:21-{len(SEQ)}\n"
    )
    config = {"attention": yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["attention"]}
    config["attention"] |= {"variants": "proteins.tsv", "model": "random:esm2_t6_8M_UR50D", "logo_window": 3}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n'
        f'include: "{ROOT}/workflow/rules/attention.smk"\n'
        "rule all:\n    input: attention_targets()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--quiet", "all"]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    logs = "\n".join(p.read_text() for p in tmp_path.glob("logs/**/*.log"))
    assert done.returncode == 0, done.stderr[-3000:] + logs[-3000:]

    scores = pd.read_csv(tmp_path / "results/attention/variant_scores.tsv", sep="\t")
    assert list(scores.variant) == ["K2A", "R10H"]
    assert np.isfinite(scores[["masked_marginal", "wildtype_marginal"]].to_numpy()).all()
    report = tmp_path / "results/attention/p1/report"
    names = ("index.html", "importance_wildtype.png", "K2A_logo.png", "R10H_pairs.png", "K2A_structure.html")
    for name in names:
        assert (report / name).stat().st_size > 0, name
    pdb_lines = (report / "structure_K2A.pdb").read_text().splitlines()
    bfactors = [float(line[60:66]) for line in pdb_lines if line[:4] == "ATOM"]
    arrays = np.load(tmp_path / "results/attention/p1/summaries.npz")
    expected = arrays["K2A__importance_mean"].mean(0)
    np.testing.assert_allclose(bfactors, expected, atol=0.006)  # PDB keeps two decimals
    assert "p1/report/index.html" in (tmp_path / "results/attention/index.html").read_text()
