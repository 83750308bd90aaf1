# Stage render: feature visualization by optimization (Olah et al. 2017), batched.
# Layer jobs render every listed channel (x diversity copies) of one layer in one job;
# figure jobs make neuron addition, interpolation and regularization-comparison figures.

from featvis.core.config import RENDER_FIGURE_KINDS
from featvis.render.checks import objective_terms

RENDER = config["render"]


wildcard_constraints:
    render_job="[^/]+",
    render_kind="|".join(RENDER_FIGURE_KINDS),


include: "functions/render.smk"


rule render_layer:
    input:
        weights=lambda wc: model_inputs(render_job(wc.render_job)["model"]),
        dataset_max=lambda wc: _dataset_max(render_job(wc.render_job)),
        manifest=lambda wc: _manifest(render_job(wc.render_job)),
        directions=lambda wc: _render_directions(render_job(wc.render_job))[0],
    output:
        grid=render_report(
            f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/grid.png",
            "{render_job}",
            "channels",
        ),
        progress=render_report(
            f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/progress.png",
            "{render_job}",
            "progress",
        ),
        renders=directory(
            f"{RESULTS}/render/{{model}}/{{layer}}/{{render_job}}/renders"
        ),
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/render/{{render_job}}"),
    log:
        "logs/render/{model}/{layer}/{render_job}.log",
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
        direction_files=lambda wc: _render_directions(render_job(wc.render_job))[1],
        compute=compute_params(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/render_layer.py"


use rule render_layer as render_objectives with:
    output:
        grid=render_report(
            f"{RESULTS}/render/objectives/{{render_job}}/grid.png",
            "{render_job}",
            "channels",
        ),
        progress=render_report(
            f"{RESULTS}/render/objectives/{{render_job}}/progress.png",
            "{render_job}",
            "progress",
        ),
        renders=directory(f"{RESULTS}/render/objectives/{{render_job}}/renders"),
    log:
        "logs/render/objectives/{render_job}.log",


rule render_figure:
    input:
        weights=lambda wc: model_inputs(
            render_figure_job(wc.render_kind, wc.render_job)["model"]
        ),
        manifest=lambda wc: _manifest(render_figure_job(wc.render_kind, wc.render_job)),
    output:
        figure=report(
            f"{RESULTS}/render/figures/{{render_kind}}/{{render_job}}.png",
            caption="../report/render_figure.rst",
            category="Feature visualization",
            labels={"job": "{render_job}", "figure": "{render_kind}"},
        ),
        renders=directory(f"{RESULTS}/render/figures/{{render_kind}}/{{render_job}}"),
    log:
        "logs/render/figures/{render_kind}/{render_job}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    params:
        job=lambda wc: render_figure_job(wc.render_kind, wc.render_job),
        kind=lambda wc: wc.render_kind,
        spec=lambda wc: model_spec(
            render_figure_job(wc.render_kind, wc.render_job)["model"]
        ),
        compute=compute_params(),
        dpi=config["figures"]["dpi"],
    script:
        "../../scripts/render_figure.py"


include: "accentuate.smk"
