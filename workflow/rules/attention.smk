# Protein attention reports (docs/attention.md): importance scores, wild type vs variant,
# variant effect scores, structure overlay. Everything lands under results/attention/.

from featvis.protein.table import read_table

ATTN = config["attention"]
ATTN_OPTIONS = {k: ATTN[k] for k in ("importance_from", "pair_map", "tile_window", "tile_overlap",
                                     "zoom_window", "logo_window", "logo_highlight", "top_residues")}


def _attention_entries():
    return {entry.id: entry for entry in read_table(ATTN["variants"])}


def attention_targets():
    """Final outputs of the attention stage: one report per protein, the score table, the index."""
    reports = [f"results/attention/{pid}/report" for pid in _attention_entries()]
    return reports + ["results/attention/variant_scores.tsv", "results/attention/index.html"]


rule attention_compute:
    input:
        table=ATTN["variants"],
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
    log:
        "logs/attention/{protein}_compute.log",
    script:
        "../../scripts/attention_compute.py"


rule attention_report:
    input:
        table=ATTN["variants"],
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
    log:
        "logs/attention/table.log",
    script:
        "../../scripts/attention_table.py"
