# Stage accentuate (part of render): feature accentuation (Hamblin et al. 2024) of the top images
# of every unit a channel render job shows. One batched job per rendered (model, layer) and
# dataset whose patches stage ran on that layer; it reads the top-K table and the images.

ACCENTUATE = config["render"]["accentuate"]


include: "functions/accentuate.smk"


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
    log:
        "logs/accentuate/{model}/{dataset}/{layer}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    params:
        spec=lambda wc: model_spec(wc.model),
        channels=lambda wc: accent_channels(wc.model, wc.layer),
        options=ACCENTUATE,
        compute=compute_params(),
    script:
        "../../scripts/accentuate_layer.py"
