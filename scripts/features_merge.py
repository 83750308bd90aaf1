"""Rule features_merge: one layer's shards concatenated into memory-mappable arrays."""
from pathlib import Path

from featvis.core.runtime import start_job
from featvis.vision.data import manifest_hash, read_manifest
from featvis.vision.features import merge_shards

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
manifest = read_manifest(sm.input.manifest)
merge_shards(
    [f for f in (Path(shard) / f"{sm.params.layer}.npz" for shard in sm.input.shards) if f.exists()],  # some empty
    Path(sm.output.meta).parent,
    model=sm.params.model,
    model_spec=sm.params.spec,
    layer=sm.params.layer,
    dataset=sm.params.dataset,
    dataset_hash=manifest_hash(manifest),
    batch_size=sm.params.batch_size,
)
