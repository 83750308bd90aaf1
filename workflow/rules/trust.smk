# Stage trust: can a render be believed? One job per channel render job (every rendered unit of
# the layer in one batch): the path check of each render against the unit's top-K and reference
# natural images (Geirhos et al. 2024), and the unit rendered from `trust.seeds` seeds (docs/trust.md).

TRUST = config["trust"]


include: "functions/trust.smk"


rule trust_layer:
    input:
        weights=lambda wc: model_inputs(render_job(wc.render_job)["model"]),
        renders=lambda wc: f"{render_dir(wc.render_job)}/renders",
        maxima=lambda wc: (
            [trust_natural(render_job(wc.render_job))[1]]
            if trust_natural(render_job(wc.render_job))
            else []
        ),
        manifest=lambda wc: (
            [trust_natural(render_job(wc.render_job))[2]]
            if trust_natural(render_job(wc.render_job))
            else []
        ),
        job_manifest=lambda wc: _manifest(render_job(wc.render_job)),
    output:
        record=f"{RESULTS}/trust/{{model}}/{{layer}}/{{render_job}}.json",
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/trust/{{render_job}}"),
    log:
        "logs/trust/{model}/{layer}/{render_job}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    params:
        job=lambda wc: render_job(wc.render_job),
        spec=lambda wc: model_spec(render_job(wc.render_job)["model"]),
        dataset=lambda wc: (trust_natural(render_job(wc.render_job)) or [None])[0],
        analysed=lambda wc: trust_analysed(render_job(wc.render_job)),
        options=lambda wc: {
            k: TRUST[k]
            for k in ("k", "reference", "seeds", "probe_layers", "threshold")
        }
        | {"seed": config["seed"]},
        compute=compute_params(),
    script:
        "../../scripts/trust_layer.py"
