# Protein attention reports (docs/attention.md): importance scores, wild type vs variant,
# variant effect scores, structure overlay. Everything lands under results/attention/.

import os
import sys

from featvis.protein.checks import check_entries, viewer_note
from featvis.protein.model_checks import inspect_model
from featvis.protein.table import read_table

ATTN = config["attention"]


include: "functions/attention.smk"


ATTN_TABLE = _attention_table()
ATTN_OPTIONS = {
    k: ATTN[k]
    for k in (
        "importance_from",
        "pair_map",
        "tile_window",
        "tile_overlap",
        "zoom_window",
        "logo_window",
        "logo_highlight",
        "top_residues",
        "scan",
        "scan_budget",
        "scan_batch",
        "min_identity",
    )
}


ATTN_ENTRIES = _read_entries()


rule attention_compute:
    input:
        table=ATTN_TABLE or [],
        files=lambda wc: _attention_entries()[wc.protein].files(),
    output:
        arrays="results/attention/{protein}/summaries.npz",
        scores="results/attention/{protein}/scores.tsv",
        meta="results/attention/{protein}/summaries.json",
    log:
        "logs/attention/{protein}_compute.log",
    conda:
        FEATVIS_ENV
    threads: ATTN["threads"]
    resources:
        gpu=gpu_jobs(ATTN["device"]),
        mem_mb=8000,
        runtime=120,
    params:
        model=ATTN["model"],
        seed=ATTN["seed"],
        threads=ATTN["threads"],
        device=ATTN["device"],
        options=ATTN_OPTIONS,
    script:
        "../../scripts/attention_compute.py"


rule attention_report:
    input:
        table=ATTN_TABLE or [],
        files=lambda wc: _attention_entries()[wc.protein].files(),
        arrays="results/attention/{protein}/summaries.npz",
        scores="results/attention/{protein}/scores.tsv",
        meta="results/attention/{protein}/summaries.json",
    output:
        report=report(
            directory("results/attention/{protein}/report"),
            htmlindex="index.html",
            caption="../report/attention_protein.rst",
            category="Protein attention",
        ),
    log:
        "logs/attention/{protein}_report.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        options=ATTN_OPTIONS,
    script:
        "../../scripts/attention_report.py"


rule attention_table:
    input:
        scores=lambda wc: expand(
            "results/attention/{protein}/scores.tsv",
            protein=list(_attention_entries()),
        ),
    output:
        table=report(
            "results/attention/variant_scores.tsv",
            caption="../report/attention_scores.rst",
            category="Protein attention",
        ),
        index="results/attention/index.html",
    log:
        "logs/attention/table.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        report_links=lambda wc: {
            pid: f"{pid}/report/index.html" for pid in _attention_entries()
        },
    script:
        "../../scripts/attention_table.py"
