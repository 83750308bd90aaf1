"""Rule gallery_model: a model's page (layers, layer table, filters, class maps, render figures)."""
from pathlib import Path

from featvis.core.runtime import start_job
from featvis.gallery.site import build_model

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
Path(sm.output.figures).mkdir(parents=True, exist_ok=True)
build_model(Path(sm.output.page).parent, sm.wildcards.model, sm.params.spec, sm.params.layers, sm.input.table,
            [tuple(f) for f in sm.params.figures])
