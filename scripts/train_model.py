"""Rule train_model: train a classifier the pipeline needs (any architecture), deterministically."""
from featvis.core.io import save_torch, write_json
from featvis.core.runtime import start_job
from featvis.vision.data import read_manifest
from featvis.vision.train import train_model

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
module, record = train_model(sm.params.spec, read_manifest(sm.input.manifest), sm.params.compute["seed"],
                             sm.wildcards.model, device)
save_torch(module.state_dict(), sm.output.weights)
write_json(sm.output.metrics, record)
