"""Rule patches_shard: top-K images per channel over one slice of the manifest."""
from pathlib import Path

from featvis.data import read_manifest
from featvis.features import shard_slices
from featvis.hooks import get_layer
from featvis.io import save_npz
from featvis.mining import mine_topk
from featvis.models import load_model
from featvis.runtime import start_job

sm = snakemake  # noqa: F821 - injected by Snakemake
device = start_job(sm.log, sm.params.compute)
model = load_model(sm.params.spec, sm.params.model)
for layer in sm.params.layers:  # fail before any work on a misspelt layer
    get_layer(model.module, layer)
paths = read_manifest(sm.input.manifest)["path"].tolist()
start, stop = shard_slices(len(paths), sm.params.n_shards)[sm.params.shard]
if sm.params.k > len(paths):
    raise ValueError(f"patches.k={sm.params.k} is larger than the dataset ({len(paths)} images)")
mined = mine_topk(model, paths[start:stop], sm.params.layers, sm.params.k, device, sm.params.batch_size,
                  negative=sm.params.negative, offset=start, partial=True)
for layer, topk in mined.items():
    save_npz(Path(sm.output[0]) / f"{layer}.npz", **topk)
