"""Rule render_layer: every listed channel of a layer (x diversity copies) in one batched render."""

from featvis.core.figures import save_figure
from featvis.core.runtime import start_job
from featvis.render import figures
from featvis.render.export import load_channel_maxima, save_batch
from featvis.render.jobs import dataset_images, layer_channels, settings_from_job, with_dataset_statistics
from featvis.render.recipes import render_channels
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
job = sm.params.job
device = start_job(sm.log, {**sm.params.compute, "seed": job["seed"]})
model = load_model(sm.params.spec, job["model"])
pre = model.preprocess
channels = layer_channels(model.module, job["layer"], job["channels"], pre.channels)
images = dataset_images(sm.input.manifest[0], job["size"]) if sm.input.manifest else None
job = with_dataset_statistics(job, images)
settings = settings_from_job(job, pre.mean, pre.std)
copies = int(job["copies"])
batch = render_channels(model.module, job["layer"], channels, settings, seed=job["seed"], copies=copies,
                        diversity=float(job["diversity"]), device=str(device), progress=True)
maxima = load_channel_maxima(sm.input.dataset_max[0]) if sm.input.dataset_max else None
save_batch(batch, sm.output.renders, layer=job["layer"], dataset_max=maxima,
           extra={"model": job["model"], "layer": job["layer"], "settings": repr(settings)})
title = f"{job['model']} {job['layer']}"
if copies > 1:
    grid = figures.diversity_rows(batch.result.images, channels, copies, f"{title}: diversity")
else:
    grid = figures.channel_grid(batch.result.images, channels, title)
save_figure(grid, sm.output.grid, dpi=sm.params.dpi)
labels = [n.replace("channel", "ch ").replace("_copy", " #") for n in batch.names]
save_figure(figures.progress_figure(batch.result.snapshots, labels, f"{title}: optimization progress"),
            sm.output.progress, dpi=sm.params.dpi)
