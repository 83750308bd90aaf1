"""Rule patches_shard: top-K images per channel over one slice of the manifest."""
from pathlib import Path

from featvis.core.io import save_npz
from featvis.vision.mining import mine_topk
from shard_job import ShardJob, run_shard_job  # scripts/, on PYTHONPATH (Snakefile)

sm = snakemake  # noqa: F821 - injected by Snakemake


def work(job: ShardJob) -> None:
    # A shard may hold fewer than K images (partial=True): patches_merge caps K at the whole dataset.
    mined = mine_topk(job.model, job.paths, sm.params.layers, sm.params.k, job.device, sm.params.batch_size,
                      negative=sm.params.negative, offset=job.start, partial=True,
                      workers=sm.params.workers) if job.paths else {}
    Path(sm.output[0]).mkdir(parents=True, exist_ok=True)  # empty when there are more shards than images
    for layer, topk in mined.items():
        save_npz(Path(sm.output[0]) / f"{layer}.npz", **topk)


run_shard_job(sm, "patches", work)
