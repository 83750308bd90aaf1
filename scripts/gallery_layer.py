"""Rule gallery_layer: a layer page and one page per unit (featvis.gallery.layer)."""
import logging

from featvis.core.runtime import start_job
from featvis.gallery.layer import build_layer

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
model, layer = sm.wildcards.model, sm.wildcards.layer
units = build_layer(sm.output[0], sm.params.results, model, layer, sm.params.maxima, list(sm.input.figures),
                    producers=list(sm.input.units))
logging.getLogger("featvis.gallery").info("%s %s: %d unit pages", model, layer, units)
