# Stage accentuate (part of render): feature accentuation (Hamblin et al. 2024) of the top images
# of every unit a channel render job shows. One batched job per rendered (model, layer) and
# dataset whose patches stage ran on that layer; it reads the top-K table and the images.

ACCENTUATE = config["render"]["accentuate"]


def accent_layers():
    """(model, layer, dataset) of every accentuation job: rendered layers with top patches."""
    if not ACCENTUATE["enabled"]:
        return []
    rendered = {(job["model"], job["layer"]) for job in RENDER["jobs"].values() if not job.get("objectives")}
    return [(model, layer, dataset) for model, dataset in analysis_pairs()
            for layer in view_layers("patches", model, dataset) if (model, layer) in rendered]


def accent_channels(model, layer):
    """The rendered channels of a layer, over all its render jobs ("all" if any job renders all)."""
    lists = [job["channels"] for job in RENDER["jobs"].values()
             if not job.get("objectives") and (job["model"], job["layer"]) == (model, layer)]
    if "all" in lists:
        return "all"
    return sorted({int(c) for channels in lists for c in channels})


rule accentuate_layer:
    input:
        weights=lambda wc: model_inputs(wc.model),
        topk=f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/top_max.npz",
        manifest=lambda wc: manifest_path(wc.dataset),
        fields=lambda wc: fields_path(wc.model),
    output:
        table=f"{RESULTS}/accentuate/{{model}}/{{dataset}}/{{layer}}/accentuate.json",
        arrays=f"{RESULTS}/accentuate/{{model}}/{{dataset}}/{{layer}}/accentuate.npz",
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/accentuate/{{dataset}}"),
    params:
        spec=lambda wc: model_spec(wc.model),
        channels=lambda wc: accent_channels(wc.model, wc.layer),
        options=ACCENTUATE,
        compute=compute_params(),
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "logs/accentuate/{model}/{dataset}/{layer}.log",
    script:
        "../../scripts/accentuate_layer.py"


def accentuate_targets():
    return [path for model, layer, dataset in accent_layers()
            for path in (f"{RESULTS}/accentuate/{model}/{dataset}/{layer}/accentuate.json",
                         f"{RESULTS}/units/{model}/{layer}/accentuate/{dataset}")]
