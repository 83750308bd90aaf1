"""Rule render_figure: neuron addition, interpolation or regularization comparison for one layer."""

from featvis.core.figures import save_figure
from featvis.core.runtime import start_job
from featvis.render import figures
from featvis.render.export import save_batch
from featvis.render.jobs import dataset_images, fit_to_model, settings_from_job, with_dataset_statistics
from featvis.render.recipes import render_addition, render_interpolation, render_regularization_comparison
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
job, kind = sm.params.job, sm.params.kind
device = str(start_job(sm.log, {**sm.params.compute, "seed": job["seed"]}))
model = load_model(sm.params.spec, job["model"])
images = dataset_images(sm.input.manifest[0], job["size"]) if sm.input.manifest else None
job = fit_to_model(with_dataset_statistics(job, images), model)
settings = settings_from_job(job, model.preprocess.mean, model.preprocess.std)
net, layer, seed = model.module, job["layer"], job["seed"]
title = f"{job['model']} {layer}"
if kind == "addition":
    pairs = [tuple(p) for p in job["pairs"]]
    batch = render_addition(net, layer, pairs, settings, seed=seed, device=device)
    save_batch(batch, sm.output.renders, layer=layer)
    figure = figures.addition_figure(batch.result.images, pairs, f"{title}: neuron addition")
elif kind == "interpolation":
    a, b = job["pair"]
    batch = render_interpolation(net, layer, a, b, int(job["frames"]), settings, seed=seed,
                                 alignment=float(job["alignment"]), shared_lowres=job["shared_lowres"],
                                 device=device)
    save_batch(batch, sm.output.renders, layer=layer)
    figure = figures.interpolation_strip(batch.result.images, a, b, f"{title}: interpolation")
else:
    regimes = render_regularization_comparison(net, layer, job["channels"], settings, seed=seed, device=device)
    for name, batch in regimes.items():
        save_batch(batch, f"{sm.output.renders}/{name.replace(' ', '_')}", layer=layer)
    images = {name: batch.result.images for name, batch in regimes.items()}
    figure = figures.regularization_figure(images, job["channels"], f"{title}: regularization, same steps")
save_figure(figure, sm.output.figure, dpi=sm.params.dpi)
