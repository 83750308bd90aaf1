"""Rule layer_table: every named module with its output shape and receptive field."""
from featvis.core.io import atomic_path
from featvis.core.runtime import start_job
from featvis.vision.layers import layer_table
from featvis.vision.models import load_model

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
model = load_model(sm.params.spec)
p = model.preprocess
table = layer_table(model.module, (1, p.channels, p.image_size, p.image_size))
with atomic_path(sm.output[0]) as tmp:
    table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
