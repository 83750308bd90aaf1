"""Rule features_shard: layer statistics for one slice of the manifest."""
from featvis.vision.features import extract_shard, write_shard
from shard_job import ShardJob, run_shard_job  # scripts/, on PYTHONPATH (Snakefile)

sm = snakemake  # noqa: F821 - injected by Snakemake


def work(job: ShardJob) -> None:
    shard = extract_shard(job.model, job.paths, sm.params.layers, job.device, sm.params.batch_size,
                          workers=sm.params.workers) if job.paths else {}
    write_shard(shard, sm.output[0])


run_shard_job(sm, "features", work)
