"""Rule layer_table: one trace of the model gives the layer table (every named module's
output shape and nominal receptive field) and the cached exact fields of the analysis
layers, which the patch and attribution figures read instead of tracing again."""
from featvis.core.hooks import layer_names
from featvis.core.io import atomic_path
from featvis.core.runtime import start_job
from featvis.vision.layers import layer_table
from featvis.vision.models import load_model
from featvis.vision.receptive import ReceptiveFields, save_fields

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
model = load_model(sm.params.spec)
p = model.preprocess
shape = p.input_shape()
# every module for the table; the analysis layers named too, so a misspelt one fails with the valid names
traced = ReceptiveFields(model.module, shape, dict.fromkeys([*layer_names(model.module), *sm.params.layers]))
save_fields(sm.output.fields, shape, {layer: traced.layer_field(layer) for layer in sm.params.layers},
            p.interpolation, p.crop_pct)
table = layer_table(model.module, shape, traced)
with atomic_path(sm.output.table) as tmp:
    table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
