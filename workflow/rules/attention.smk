# Protein attention reports (docs/attention.md): importance scores, wild type vs variant,
# variant effect scores, structure overlay. Everything lands under results/attention/.

import os
import sys

from featvis.protein.checks import check_entries, viewer_note
from featvis.protein.model_checks import inspect_model
from featvis.protein.table import read_table

ATTN = config["attention"]


def _attention_table():
    """The protein table; a relative path not found here is looked up beside the Snakefile."""
    path = ATTN.get("variants")
    if path and not os.path.isabs(path) and not os.path.exists(path):
        shipped = os.path.join(workflow.basedir, path)
        return shipped if os.path.exists(shipped) else path
    return path


ATTN_TABLE = _attention_table()
ATTN_OPTIONS = {k: ATTN[k] for k in ("importance_from", "pair_map", "tile_window", "tile_overlap",
                                     "zoom_window", "logo_window", "logo_highlight", "top_residues",
                                     "scan", "scan_budget", "scan_batch", "min_identity")}


def _read_entries():
    """The table and the model, read and checked once at start (model files, structures, assays, each
    protein's work against the scan budget): a bad row or a missing model stops the run."""
    if not ATTN_TABLE:
        return {}
    try:
        entries = read_table(ATTN_TABLE)
        if workflow.is_main_process:
            model = inspect_model(ATTN["model"], MODEL_CACHE, ATTN["seed"], ATTN["threads"], ATTN["device"],
                                  ATTN["scan_batch"])
            for estimate in check_entries(entries, ATTN["scan"], ATTN["scan_budget"], ATTN["min_identity"],
                                          model, ATTN_OPTIONS):
                print(f"featvis: note: {estimate.sentence()}", file=sys.stderr)
            if viewer_note(entries):
                print(f"featvis: note: {viewer_note(entries)}", file=sys.stderr)
    except ValueError as error:
        print(f"featvis: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    return {entry.id: entry for entry in entries}


ATTN_ENTRIES = _read_entries()


def _attention_entries():
    return ATTN_ENTRIES


def attention_targets():
    """Final outputs of the attention stage: one report per protein, the score table, the index."""
    if not ATTN_TABLE:  # no protein table configured: the stage is off
        return []
    reports = [f"results/attention/{pid}/report" for pid in _attention_entries()]
    return reports + ["results/attention/variant_scores.tsv", "results/attention/index.html"]


rule attention_compute:
    input:
        table=ATTN_TABLE or [],
        files=lambda wc: _attention_entries()[wc.protein].files(),
    output:
        arrays="results/attention/{protein}/summaries.npz",
        scores="results/attention/{protein}/scores.tsv",
        meta="results/attention/{protein}/summaries.json",
    params:
        model=ATTN["model"],
        seed=ATTN["seed"],
        threads=ATTN["threads"],
        device=ATTN["device"],
        options=ATTN_OPTIONS,
    threads: ATTN["threads"]
    resources:
        gpu=gpu_jobs(ATTN["device"]),
        mem_mb=8000,
        runtime=120,
    log:
        "logs/attention/{protein}_compute.log",
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
    params:
        options=ATTN_OPTIONS,
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "logs/attention/{protein}_report.log",
    script:
        "../../scripts/attention_report.py"


rule attention_table:
    input:
        scores=lambda wc: expand("results/attention/{protein}/scores.tsv", protein=list(_attention_entries())),
    output:
        table=report("results/attention/variant_scores.tsv", caption="../report/attention_scores.rst",
                     category="Protein attention"),
        index="results/attention/index.html",
    params:
        report_links=lambda wc: {pid: f"{pid}/report/index.html" for pid in _attention_entries()},
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/attention/table.log",
    script:
        "../../scripts/attention_table.py"
