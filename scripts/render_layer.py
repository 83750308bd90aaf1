"""Rule render_layer: one batched render of a job's channels (x diversity copies) or of its objectives."""

from featvis.core.figures import save_figure
from featvis.core.runtime import start_job
from featvis.render import figures
from featvis.render.export import load_channel_maxima, save_batch, save_units, trace_record
from featvis.render.jobs import (
    dataset_images,
    fit_to_model,
    job_objectives,
    layer_channels,
    settings_from_job,
    with_dataset_statistics,
)
from featvis.render.recipes import render_channels, render_objectives
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
job = sm.params.job
name = sm.wildcards.render_job
device = start_job(sm.log, {**sm.params.compute, "seed": job["seed"]})
model = load_model(sm.params.spec, job["model"])
pre = model.preprocess
images = dataset_images(sm.input.manifest[0], job["size"]) if sm.input.manifest else None
job = fit_to_model(with_dataset_statistics(job, images), model)
settings = settings_from_job(job, pre.mean, pre.std)
extra = {"model": job["model"], "layer": job.get("layer"), "settings": repr(settings)}

if job.get("objectives"):
    files = sm.params.direction_files  # {dataset: {layer: [mean.npy, manifest.csv]}}, made by the rule
    objectives = job_objectives(model, job, lambda dataset, layer: files[dataset][layer],
                                where=f"render.jobs.{name}.objectives")
    batch = render_objectives(model.module, objectives, settings, seed=job["seed"], device=str(device), progress=True)
    save_batch(batch, sm.output.renders, extra={**extra, "objectives": {k: o.name for k, o in objectives.items()}})
    title = f"{job['model']}: {name}"
    grid = figures.named_grid(batch.result.images, batch.names, title)
    labels = batch.names
else:
    channels = layer_channels(model.module, job["layer"], job["channels"], pre.channels, pre.size)
    copies = int(job["copies"])
    batch = render_channels(model.module, job["layer"], channels, settings, seed=job["seed"], copies=copies,
                            diversity=float(job["diversity"]), device=str(device), progress=True)
    maxima = load_channel_maxima(sm.input.dataset_max[0]) if sm.input.dataset_max else None
    save_batch(batch, sm.output.renders, layer=job["layer"], dataset_max=maxima, extra=extra)
    save_units(batch, sm.output.units, trace_record(batch, job["layer"], maxima, extra), name)
    title = f"{job['model']} {job['layer']}"
    if copies > 1:
        grid = figures.diversity_rows(batch.result.images, channels, copies, f"{title}: diversity")
    else:
        grid = figures.channel_grid(batch.result.images, channels, title)
    labels = [n.replace("channel", "ch ").replace("_copy", " #") for n in batch.names]

save_figure(grid, sm.output.grid, dpi=sm.params.dpi)
save_figure(figures.progress_figure(batch.result.snapshots, labels, f"{title}: optimization progress"),
            sm.output.progress, dpi=sm.params.dpi)
