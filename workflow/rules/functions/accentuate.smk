# Helper functions of accentuate.smk (kept apart from its rules: snakemake --lint).


def accent_layers():
    """(model, layer, dataset) of every accentuation job: rendered layers with top patches."""
    if not ACCENTUATE["enabled"]:
        return []
    rendered = {
        (job["model"], job["layer"])
        for job in RENDER["jobs"].values()
        if not job.get("objectives")
    }
    return [
        (model, layer, dataset)
        for model, dataset in analysis_pairs()
        for layer in view_layers("patches", model, dataset)
        if (model, layer) in rendered and model in ACCENTUATE["models"]
    ]


def accent_channels(model, layer):
    """The rendered channels of a layer, over all its render jobs ("all" if any job renders all)."""
    lists = [
        job["channels"]
        for job in RENDER["jobs"].values()
        if not job.get("objectives") and (job["model"], job["layer"]) == (model, layer)
    ]
    if "all" in lists:
        return "all"
    return sorted({int(c) for channels in lists for c in channels})


def accentuate_targets():
    return [
        path
        for model, layer, dataset in accent_layers()
        for path in (
            f"{RESULTS}/accentuate/{model}/{dataset}/{layer}/accentuate.json",
            f"{RESULTS}/units/{model}/{layer}/accentuate/{dataset}",
        )
    ]
