# Stage render: feature visualization by optimization (Olah et al. 2017), batched.
# Layer jobs render every listed channel (x diversity copies) of one layer in one job;
# figure jobs make neuron addition, interpolation and regularization-comparison figures.

from featvis.core.config import RENDER_FIGURE_KINDS
from featvis.render.checks import objective_terms

RENDER = config["render"]


wildcard_constraints:
    render_job="[^/]+",
    render_kind="|".join(RENDER_FIGURE_KINDS),


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
    script). The start checks made sure each such layer is analysed for the model and dataset."""
    files, classes = [], {}
    terms = [term for spec in job.get("objectives", {}).values() for term in objective_terms(spec)]
    for args in (args for kind, args in terms if kind == "direction"):
        if isinstance(args.get("vector"), str):
            files.append(args["vector"])
        elif "classes" in args:
            model, dataset, layer = job["model"], args["dataset"], args.get("layer", job.get("layer"))
            classes.setdefault(dataset, {})[layer] = [f"{RESULTS}/features/{model}/{dataset}/{layer}/mean.npy",
                                                      manifest_path(dataset)]
            files += classes[dataset][layer]
    return sorted(set(files)), classes


def render_dir(name):
    """Where a job's pictures go: channel jobs under their model and layer (their renders are also
    unit pictures, results/units/<model>/<layer>/render/<job>/), objective jobs under objectives/."""
    job = render_job(name)
    if job.get("objectives"):
        return f"{RESULTS}/render/objectives/{name}"
    return f"{RESULTS}/render/{job['model']}/{job['layer']}/{name}"


def render_report(path, name, figure):
    return report(path, caption=f"../report/render_{'grid' if figure == 'channels' else figure}.rst",
                  category="Feature visualization", labels={"job": name, "figure": figure})


rule render_layer:
    input:
        weights=lambda wc: model_inputs(render_job(wc.render_job)["model"]),
        dataset_max=lambda wc: _dataset_max(render_job(wc.render_job)),
        manifest=lambda wc: _manifest(render_job(wc.render_job)),
        directions=lambda wc: _render_directions(render_job(wc.render_job))[0],
    output:
        grid=render_report(f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/grid.png", "{render_job}", "channels"),
        progress=render_report(
            f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/progress.png", "{render_job}", "progress"
        ),
        renders=directory(f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/renders"),
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/render/{{render_job}}"),
    params:
        job=lambda wc: render_job(wc.render_job),
        spec=lambda wc: model_spec(render_job(wc.render_job)["model"]),
        direction_files=lambda wc: _render_directions(render_job(wc.render_job))[1],
        compute=compute_params(),
        dpi=config["figures"]["dpi"],
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    log:
        "logs/render/{model}/{layer}/{render_job}.log",
    script:
        "../../scripts/render_layer.py"


use rule render_layer as render_objectives with:
    output:
        grid=render_report(f"{RESULTS}/render/objectives/{{render_job}}/grid.png", "{render_job}", "channels"),
        progress=render_report(f"{RESULTS}/render/objectives/{{render_job}}/progress.png", "{render_job}", "progress"),
        renders=directory(f"{RESULTS}/render/objectives/{{render_job}}/renders"),
    log:
        "logs/render/objectives/{render_job}.log",


rule render_figure:
    input:
        weights=lambda wc: model_inputs(render_figure_job(wc.render_kind, wc.render_job)["model"]),
        manifest=lambda wc: _manifest(render_figure_job(wc.render_kind, wc.render_job)),
    output:
        figure=report(
            f"{RESULTS}/render/figures/{{render_kind}}/{{render_job}}.png",
            caption="../report/render_figure.rst",
            category="Feature visualization",
            labels={"job": "{render_job}", "figure": "{render_kind}"},
        ),
        renders=directory(f"{RESULTS}/render/figures/{{render_kind}}/{{render_job}}"),
    params:
        job=lambda wc: render_figure_job(wc.render_kind, wc.render_job),
        kind=lambda wc: wc.render_kind,
        spec=lambda wc: model_spec(render_figure_job(wc.render_kind, wc.render_job)["model"]),
        compute=compute_params(),
        dpi=config["figures"]["dpi"],
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    log:
        "logs/render/figures/{render_kind}/{render_job}.log",
    script:
        "../../scripts/render_figure.py"


def render_targets():
    out = []
    for name, job in RENDER["jobs"].items():
        out += [f"{render_dir(name)}/grid.png", f"{render_dir(name)}/progress.png"]
        if not job.get("objectives"):
            out.append(f"{RESULTS}/units/{job['model']}/{job['layer']}/render/{name}")
    for kind in RENDER_FIGURE_KINDS:
        out += [f"{RESULTS}/render/figures/{kind}/{name}.png" for name in RENDER["figures"][kind]]
    return out + accentuate_targets()


include: "accentuate.smk"
