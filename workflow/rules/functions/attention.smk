# Helper functions of attention.smk (kept apart from its rules: snakemake --lint).


def _attention_table():
    """The protein table; a relative path not found here is looked up beside the Snakefile."""
    path = ATTN.get("variants")
    if path and not os.path.isabs(path) and not os.path.exists(path):
        shipped = os.path.join(workflow.basedir, path)
        return shipped if os.path.exists(shipped) else path
    return path


def _read_entries():
    """The table and the model, read and checked once at start (model files, structures, assays, each
    protein's work against the scan budget): a bad row or a missing model stops the run.
    """
    if not ATTN_TABLE:
        return {}
    try:
        entries = read_table(ATTN_TABLE)
        if workflow.is_main_process:
            model = inspect_model(
                ATTN["model"],
                MODEL_CACHE,
                ATTN["seed"],
                ATTN["threads"],
                ATTN["device"],
                ATTN["scan_batch"],
            )
            for estimate in check_entries(
                entries,
                ATTN["scan"],
                ATTN["scan_budget"],
                ATTN["min_identity"],
                model,
                ATTN_OPTIONS,
            ):
                print(f"featvis: note: {estimate.sentence()}", file=sys.stderr)
            if viewer_note(entries):
                print(f"featvis: note: {viewer_note(entries)}", file=sys.stderr)
    except ValueError as error:
        print(f"featvis: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    return {entry.id: entry for entry in entries}


def _attention_entries():
    return ATTN_ENTRIES


def attention_targets():
    """Final outputs of the attention stage: one report per protein, the score table, the index."""
    if not ATTN_TABLE:  # no protein table configured: the stage is off
        return []
    reports = [f"results/attention/{pid}/report" for pid in _attention_entries()]
    return reports + [
        "results/attention/variant_scores.tsv",
        "results/attention/index.html",
    ]
