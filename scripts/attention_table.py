"""Snakemake script: one variant effect score table for all proteins, and an index page."""

from pathlib import Path

import pandas as pd

from featvis.core.runtime import start_job
from featvis.protein.summary_table import prune_stale, write_index

sm = snakemake  # noqa: F821  (injected by Snakemake)
start_job(sm.log)
table = pd.concat([pd.read_csv(path, sep="\t") for path in sm.input.scores], ignore_index=True)
write_index(table, sm.output.table, sm.output.index, sm.params.report_links)
for name in prune_stale(Path(sm.output.index).parent, list(sm.params.report_links)):
    print(f"featvis: removed results/attention/{name}/: that protein is no longer in the table")
