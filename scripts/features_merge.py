"""Rule features_merge: each layer's shards concatenated into memory-mappable arrays, all layers
of one (model, dataset) in one job."""
from pathlib import Path

from featvis.core.runtime import each_layer, start_job
from featvis.vision.data import manifest_hash, read_manifest
from featvis.vision.features import merge_shards

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
dataset_hash = manifest_hash(read_manifest(sm.input.manifest))
for layer, meta in each_layer(zip(sm.params.layers, sm.output.meta)):
    merge_shards(
        [f for f in (Path(shard) / f"{layer}.npz" for shard in sm.input.shards) if f.exists()],  # some empty
        Path(meta).parent,
        model=sm.params.model,
        model_spec=sm.params.spec,
        layer=layer,
        dataset=sm.params.dataset,
        dataset_hash=dataset_hash,
        batch_size=sm.params.batch_size,
    )
