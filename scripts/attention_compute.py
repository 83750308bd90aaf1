"""Snakemake script: run the protein model on one protein and its variants."""

from featvis.core.io import save_npz, write_sidecar, write_text
from featvis.core.runtime import start_job
from featvis.protein.models import load_protein_model
from featvis.protein.report import AttentionParams, compute_protein
from featvis.protein.table import entry_by_id

sm = snakemake  # noqa: F821  (injected by Snakemake)
p = sm.params
# The configured thread count, not the cores Snakemake grants: float results depend on it.
device = start_job(sm.log, {"seed": p.seed, "threads": p.threads, "device": p.device})
lm = load_protein_model(p.model, seed=p.seed).to(device)
entry = entry_by_id(sm.input.table, sm.wildcards.protein)
params = AttentionParams(**p.options)
arrays, scores = compute_protein(lm, entry, params)
save_npz(sm.output.arrays, **arrays)
write_text(sm.output.scores, scores.to_csv(sep="\t", index=False))
write_sidecar(
    sm.output.meta,
    protein=entry.id,
    sequence=entry.sequence,
    model=lm.name,
    training_note=lm.training_note,
    variants=[v.label for v in entry.variants],
    params=p.options,
    seed=p.seed,
    threads=p.threads,
    device=str(device),
)
