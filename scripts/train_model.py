"""Rule train_model: train a small classifier the pipeline needs, deterministically."""
import torch

from featvis.data import read_manifest
from featvis.io import atomic_path, write_json
from featvis.models import load_model
from featvis.runtime import start_job
from featvis.train import train_classifier

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log, sm.params.compute)
model = load_model({"architecture": sm.params.architecture, "allow_random": True})
train = sm.params.train
metrics = train_classifier(
    model.module, read_manifest(sm.input.manifest), model.preprocess,
    epochs=train.get("epochs", 4), batch_size=train.get("batch_size", 64),
    learning_rate=train.get("learning_rate", 0.002), seed=sm.params.compute["seed"],
)
with atomic_path(sm.output.weights) as tmp:
    torch.save(model.module.state_dict(), tmp)
write_json(sm.output.metrics, {"architecture": sm.params.architecture, **train, **metrics})
