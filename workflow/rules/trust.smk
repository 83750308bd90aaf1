# Stage trust: can a render be believed? One job per channel render job (every rendered unit of
# the layer in one batch): the path check of each render against the unit's top-K and reference
# natural images (Geirhos et al. 2024), and the unit rendered from `trust.seeds` seeds (docs/trust.md).

TRUST = config["trust"]


def trust_jobs():
    """The channel render jobs that get a check (objective jobs show no single unit)."""
    if not TRUST["enabled"]:
        return {}
    return {name: job for name, job in config["render"]["jobs"].items() if not job.get("objectives")}


def trust_natural(job):
    """(dataset, max.npy, manifest) of the first analysis of the job's model that covers its layer,
    as the render job compares with; None when the features stage does not run on the layer."""
    for model, dataset in analysis_pairs():
        if model == job["model"] and job["layer"] in analysis_layers(model, dataset):
            return dataset, f"{RESULTS}/features/{model}/{dataset}/{job['layer']}/max.npy", manifest_path(dataset)
    return None


def trust_analysed(job):
    """The analysed layers of the job's model (for `trust.probe_layers: analysed`)."""
    natural = trust_natural(job)
    return analysis_layers(job["model"], natural[0]) if natural else []


def trust_record(name):
    job = render_job(name)
    return f"{RESULTS}/trust/{job['model']}/{job['layer']}/{name}.json"


def trust_units(name):
    job = render_job(name)
    return f"{RESULTS}/units/{job['model']}/{job['layer']}/trust/{name}"


rule trust_layer:
    input:
        weights=lambda wc: model_inputs(render_job(wc.render_job)["model"]),
        renders=lambda wc: f"{render_dir(wc.render_job)}/renders",
        maxima=lambda wc: [trust_natural(render_job(wc.render_job))[1]] if trust_natural(render_job(wc.render_job)) else [],
        manifest=lambda wc: [trust_natural(render_job(wc.render_job))[2]] if trust_natural(render_job(wc.render_job)) else [],
        job_manifest=lambda wc: _manifest(render_job(wc.render_job)),
    output:
        record=f"{RESULTS}/trust/{{model}}/{{layer}}/{{render_job}}.json",
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/trust/{{render_job}}"),
    params:
        job=lambda wc: render_job(wc.render_job),
        spec=lambda wc: model_spec(render_job(wc.render_job)["model"]),
        dataset=lambda wc: (trust_natural(render_job(wc.render_job)) or [None])[0],
        analysed=lambda wc: trust_analysed(render_job(wc.render_job)),
        options=lambda wc: {k: TRUST[k] for k in ("k", "reference", "seeds", "probe_layers", "threshold")}
        | {"seed": config["seed"]},
        compute=compute_params(),
    threads: config["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
    log:
        "logs/trust/{model}/{layer}/{render_job}.log",
    script:
        "../../scripts/trust_layer.py"


def trust_targets():
    return [path for name in trust_jobs() for path in (trust_record(name), trust_units(name))]
