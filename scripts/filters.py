"""Rule filters: the first-layer filter grid of a model."""
from featvis.core.figures import save_figure
from featvis.core.runtime import start_job
from featvis.vision.models import load_model
from featvis.vision.weights import filter_grid

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
model = load_model(sm.params.spec, sm.params.model)
p = model.preprocess
figure = filter_grid(model.module, p.input_shape(), sm.params.model, sm.params.cell_inches)
save_figure(figure, sm.output[0], dpi=sm.params.dpi)
