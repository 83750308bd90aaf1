"""Rule features_shard: layer statistics for one slice of the manifest."""
from featvis.features import extract_shard, write_shard
from featvis.runtime import start_shard_job

sm = snakemake  # noqa: F821 - injected by Snakemake
job = start_shard_job(sm)
write_shard(extract_shard(job.model, job.paths, sm.params.layers, job.device, sm.params.batch_size), sm.output[0])
