"""Rule train_model: train a small classifier the pipeline needs, deterministically."""
from featvis.core.io import save_torch, write_json
from featvis.core.runtime import start_job
from featvis.vision.data import read_manifest
from featvis.vision.models import load_model
from featvis.vision.train import train_classifier

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log, sm.params.compute)
model = load_model({"architecture": sm.params.architecture, "allow_random": True})
train = sm.params.train
metrics = train_classifier(
    model.module, read_manifest(sm.input.manifest), model.preprocess,
    epochs=train["epochs"], batch_size=train["batch_size"],
    learning_rate=train["learning_rate"], seed=sm.params.compute["seed"],
)
save_torch(model.module.state_dict(), sm.output.weights)
write_json(sm.output.metrics, {"architecture": sm.params.architecture, **train, **metrics})
