# Helper functions of render.smk (kept apart from its rules: snakemake --lint).


def render_job(name):
    """A layer job, resolved: schema defaults < render.defaults < seed < the job's keys."""
    return RENDER["jobs"][name]


def render_figure_job(kind, name):
    return RENDER["figures"][kind][name]


def _dataset_max(job):
    """Maxima to compare renders with: the job's own file, else the features stage's
    per-image maxima of the same model and layer (first analysis that has it)."""
    if job.get("objectives"):
        return []
    if job["dataset_max"]:
        return [job["dataset_max"]]
    for model, dataset in analysis_pairs():
        if model == job["model"] and job["layer"] in analysis_layers(model, dataset):
            return [f"{RESULTS}/features/{model}/{dataset}/{job['layer']}/max.npy"]
    return []


def _manifest(job):
    """A job with `dataset:` estimates its colour covariance / MACO magnitudes from that dataset."""
    return [manifest_path(job["dataset"])] if job["dataset"] else []


def _render_directions(job):
    """The files a job's `direction` objectives read (for `input:`), and for `classes` the features
    stage's pooled means and the manifest as {dataset: {layer: [mean.npy, manifest.csv]}} (for the
    script). The start checks made sure each such layer is analysed for the model and dataset.
    """
    files, classes = [], {}
    terms = [
        term
        for spec in job.get("objectives", {}).values()
        for term in objective_terms(spec)
    ]
    for args in (args for kind, args in terms if kind == "direction"):
        if isinstance(args.get("vector"), str):
            files.append(args["vector"])
        elif "classes" in args:
            model, dataset, layer = (
                job["model"],
                args["dataset"],
                args.get("layer", job.get("layer")),
            )
            classes.setdefault(dataset, {})[layer] = [
                f"{RESULTS}/features/{model}/{dataset}/{layer}/mean.npy",
                manifest_path(dataset),
            ]
            files += classes[dataset][layer]
    return sorted(set(files)), classes


def render_dir(name):
    """Where a job's pictures go: channel jobs under their model and layer (their renders are also
    unit pictures, results/units/<model>/<layer>/render/<job>/), objective jobs under objectives/.
    """
    job = render_job(name)
    if job.get("objectives"):
        return f"{RESULTS}/render/objectives/{name}"
    return f"{RESULTS}/render/{job['model']}/{job['layer']}/{name}"


def render_report(path, name, figure):
    return report(
        path,
        caption=f"../report/render_{'grid' if figure == 'channels' else figure}.rst",
        category="Feature visualization",
        labels={"job": name, "figure": figure},
    )


def render_targets():
    out = []
    for name, job in RENDER["jobs"].items():
        out += [f"{render_dir(name)}/grid.png", f"{render_dir(name)}/progress.png"]
        if not job.get("objectives"):
            out.append(f"{RESULTS}/units/{job['model']}/{job['layer']}/render/{name}")
    for kind in RENDER_FIGURE_KINDS:
        out += [
            f"{RESULTS}/render/figures/{kind}/{name}.png"
            for name in RENDER["figures"][kind]
        ]
    return out + accentuate_targets()
