"""Rule gallery_layer: each layer's page and one page per unit (featvis.gallery.layer), all layers
of one model in one job."""
import logging
from pathlib import Path

from featvis.core.runtime import each_layer, start_job
from featvis.gallery.layer import build_layer

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
results = Path(sm.output[0]).parents[2]  # <results>/gallery/<model>/<layer>
model, pages = sm.params.model, sm.params.pages  # {layer: {"units": [...], "figures": [...], "maxima": {...}}}
for layer, out_dir in each_layer(zip(pages, sm.output)):
    page = pages[layer]
    units = build_layer(out_dir, results, model, layer, page["maxima"], list(page["figures"]),
                        producers=list(page["units"]), maps=page["maps"],
                        concepts_quality=(page["concepts"] or [None])[0])
    logging.getLogger("featvis.gallery").info("%s %s: %d unit pages", model, layer, units)
