"""Snakemake script: figures, tables, structure files and the HTML page of one protein."""

import numpy as np
import pandas as pd

from featvis.core.io import read_json
from featvis.core.runtime import start_job
from featvis.protein.report import AttentionParams, render_protein
from featvis.protein.table import entry_by_id

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm.log)
entry = entry_by_id(sm.input.table, sm.wildcards.protein)
meta = read_json(sm.input.meta)
with np.load(sm.input.arrays) as arrays:
    render_protein(
        entry,
        dict(arrays),
        pd.read_csv(sm.input.scores, sep="\t"),
        AttentionParams(**sm.params.options),
        sm.output.report,
        meta["model"],
        meta["training_note"],
    )
