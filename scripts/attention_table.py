"""Snakemake script: one variant effect score table for all proteins, and an index page."""

import sys

import pandas as pd

from featvis.protein.summary_table import write_index

sm = snakemake  # noqa: F821  (injected by Snakemake)
sys.stderr = open(sm.log[0], "w", buffering=1)
table = pd.concat([pd.read_csv(path, sep="\t") for path in sm.input.scores], ignore_index=True)
write_index(table, sm.output.table, sm.output.index, sm.params.report_links)
