"""Snakemake script: one variant effect score table for all proteins, and an index page."""

import pandas as pd

from featvis.core.runtime import start_job
from featvis.protein.summary_table import write_index

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm.log)
table = pd.concat([pd.read_csv(path, sep="\t") for path in sm.input.scores], ignore_index=True)
write_index(table, sm.output.table, sm.output.index, sm.params.report_links)
