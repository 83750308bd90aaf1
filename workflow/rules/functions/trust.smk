# Helper functions of trust.smk (kept apart from its rules: snakemake --lint).


def trust_jobs():
    """The channel render jobs that get a check (objective jobs show no single unit)."""
    if not TRUST["enabled"]:
        return {}
    return {
        name: job
        for name, job in config["render"]["jobs"].items()
        if not job.get("objectives")
    }


def trust_natural(job):
    """(dataset, max.npy, manifest) of the first analysis of the job's model that covers its layer,
    as the render job compares with; None when the features stage does not run on the layer.
    """
    for model, dataset in analysis_pairs():
        if model == job["model"] and job["layer"] in analysis_layers(model, dataset):
            return (
                dataset,
                f"{RESULTS}/features/{model}/{dataset}/{job['layer']}/max.npy",
                manifest_path(dataset),
            )
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


def trust_targets():
    return [
        path
        for name in trust_jobs()
        for path in (trust_record(name), trust_units(name))
    ]
