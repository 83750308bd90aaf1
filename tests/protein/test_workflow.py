"""End to end: the attention rules under Snakemake, on a random ESM-2 and a generated structure."""

import re

import numpy as np
import pandas as pd
import pytest

from featvis.protein.structure import ideal_helix, write_ca_pdb
from workflow_helpers import checkout, snakemake, write_config

SEQ = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQ"


@pytest.mark.integration
def test_attention_rules_end_to_end(tmp_path):
    root = checkout(tmp_path / "featvis")
    write_ca_pdb(root / "helix.pdb", SEQ, ideal_helix(len(SEQ)))
    (root / "p1.fasta").write_text(">p1\n" + SEQ + "\n")
    header = "id\tsequence\tvariants\tpdb\tdomains\n"
    p1 = f"p1\tp1.fasta\tK2A;p.Arg10His\thelix.pdb:A\tN-term:1-20;rest:21-{len(SEQ)}\n"
    (root / "proteins.tsv").write_text(header + p1 + f"p2\t{SEQ[:30]}\tK2A\t\t\n")
    config = {"attention": {"variants": "proteins.tsv", "model": "random:esm2_t6_8M_UR50D", "logo_window": 3}}
    done = snakemake(root, write_config(root / "protein.yaml", config))  # relative paths: from the root
    logs = "\n".join(p.read_text() for p in root.glob("logs/**/*.log"))
    assert done.returncode == 0, done.stderr[-3000:] + logs[-3000:]
    # at start, an estimate per protein; while the jobs run, progress on the console and in the log
    assert re.search(rf"featvis: note: protein 'p1' \({len(SEQ)} residues\): about \d+ model passes", done.stderr)
    assert f"featvis: p1 masked scan: {len(SEQ)}/{len(SEQ)} positions, done in" in done.stderr
    assert "featvis: p1 importance pass: 3/3 sequences" in done.stderr and "INFO featvis: p1 masked scan" in logs

    scores = pd.read_csv(root / "results/attention/variant_scores.tsv", sep="\t")
    assert list(zip(scores.protein, scores.variant)) == [("p1", "K2A"), ("p1", "R10H"), ("p2", "K2A")]
    assert np.isfinite(scores[["masked_marginal", "wildtype_marginal"]].to_numpy()).all()
    report = root / "results/attention/p1/report"
    names = ("index.html", "importance_wildtype.png", "K2A_logo.png", "R10H_pairs.png", "K2A_structure.html",
             "substitution_scan.png", "substitution_scan.tsv", "agreement.png", "K2A.pdf", "R10H.pdf", "report.css",
             "3Dmol-min.js")
    for name in names:
        assert (report / name).stat().st_size > 0, name
    pdb_lines = (report / "structure_K2A.pdb").read_text().splitlines()
    bfactors = [float(line[60:66]) for line in pdb_lines if line[:4] == "ATOM"]
    arrays = np.load(root / "results/attention/p1/summaries.npz")
    expected = arrays["K2A__importance_mean"].mean(0)
    np.testing.assert_allclose(bfactors, expected, atol=0.006)  # PDB keeps two decimals
    assert "p1/report/index.html" in (root / "results/attention/index.html").read_text()
    made = {p.relative_to(root / "results").parts[0] for p in (root / "results").rglob("*") if p.is_file()}
    assert made == {"attention", "gallery", "config.resolved.yaml", ".gitkeep"}, made  # the protein stage ran alone
    # the gallery only links the protein reports: no vision page was made
    gallery = {p.relative_to(root / "results/gallery").parts[0] for p in (root / "results/gallery").rglob("*")}
    assert gallery == {"index.html", "assets", "proteins"}, gallery
    assert "proteins/index.html" in (root / "results/gallery/index.html").read_text()
    page = (report / "index.html").read_text()
    assert "Does importance agree with sensitivity?" in page and "are contacts in the structure" in page
    assert len(pd.read_csv(report / "substitution_scan.tsv", sep="\t")) == 19 * len(SEQ)
    assert (report / "K2A.pdf").read_bytes().startswith(b"%PDF")

    # A protein taken out of the table: its old report folder goes too.
    (root / "proteins.tsv").write_text(header + p1)
    done = snakemake(root, root / "protein.yaml")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (root / "results/attention/p2").exists()
    assert (report / "index.html").exists()
    assert "p2" not in (root / "results/attention/index.html").read_text()


@pytest.mark.integration
def test_bad_protein_inputs_stop_at_start(tmp_path):
    root = checkout(tmp_path / "featvis")
    (root / "proteins.tsv").write_text(f"id\tsequence\tvariants\nlong\t{SEQ * 30}\tK2A\n")  # 1,680 residues inline
    config = {"attention": {"variants": "proteins.tsv", "model": "random:esm2_t6_8M_UR50D", "scan_budget": 1}}
    done = snakemake(root, write_config(root / "protein.yaml", config))
    assert done.returncode == 1
    assert "featvis: protein 'long' has 1680 residues: its masked scan needs 1680 model passes" in done.stderr
    assert "attention.scan: wildtype" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "results/attention").exists()

    # A checkpoint that is not there stops at start, saying what was looked for and where.
    config["attention"] |= {"model": "models/my_esm2.pt", "scan_budget": 3600}
    done = snakemake(root, write_config(root / "protein.yaml", config))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "featvis: attention.model 'models/my_esm2.pt': ESM-2 checkpoint not found: models/my_esm2.pt" in done.stderr
    assert "http" not in done.stderr and not (root / "results/attention").exists()
