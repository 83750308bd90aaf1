"""Rule features_shard: layer statistics for one slice of the manifest."""
from featvis.data import read_manifest
from featvis.features import extract_shard, shard_slices, write_shard
from featvis.hooks import get_layer
from featvis.models import load_model
from featvis.runtime import start_job

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
model = load_model(sm.params.spec, sm.params.model)
for layer in sm.params.layers:  # fail before any work on a misspelt layer
    get_layer(model.module, layer)
paths = read_manifest(sm.input.manifest)["path"].tolist()
start, stop = shard_slices(len(paths), sm.params.n_shards)[sm.params.shard]
shard = extract_shard(model, paths[start:stop], sm.params.layers, device, sm.params.batch_size)
write_shard(shard, sm.output[0])
