"""Rule layer_table: every named module with its output shape and receptive field."""
from featvis.io import atomic_path
from featvis.layers import layer_table
from featvis.models import load_model
from featvis.runtime import start_job

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
model = load_model(sm.params.spec)
p = model.preprocess
table = layer_table(model.module, (1, p.channels, p.image_size, p.image_size))
with atomic_path(sm.output[0]) as tmp:
    table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
