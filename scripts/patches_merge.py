"""Rule patches_merge: one layer's shard top-Ks merged exactly."""
from pathlib import Path

import numpy as np

from featvis.core.io import read_json, save_npz, write_sidecar
from featvis.core.runtime import start_job
from featvis.vision.data import manifest_hash, read_manifest
from featvis.vision.mining import merge_topk, topk_from_stats

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
if sm.params.from_features:  # the features stage's per-image maxima, streamed from disk
    maxima = np.load(sm.input.max, mmap_mode="r")
    spatial = tuple(read_json(sm.input.features_meta)["spatial"])
    topk = topk_from_stats(maxima, np.load(sm.input.argmax, mmap_mode="r"), sm.params.k, spatial=spatial)
else:
    files = [Path(shard) / f"{sm.params.layer}.npz" for shard in sm.input.shards]
    parts = [dict(np.load(f)) for f in files if f.exists()]  # shards past the last image are empty
    topk = merge_topk(parts, sm.params.k)
save_npz(sm.output.topk, **topk)
write_sidecar(sm.output.meta, model=sm.params.model, dataset=sm.params.dataset, layer=sm.params.layer,
              k=int(topk["value"].shape[1]), k_configured=sm.params.k,  # k is capped at the number of images
              negative=bool(topk["negative"]), channels=int(topk["value"].shape[0]),
              spatial=topk["spatial"].tolist(), source="features" if sm.params.from_features else "miner",
              dataset_hash=manifest_hash(read_manifest(sm.input.manifest)),
              ranking="distinct images per channel, each at its spatial max (min); ties to the lower image index")
