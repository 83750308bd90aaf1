"""Rule patches_merge: each (layer, sign)'s shard top-Ks merged exactly, all of one (model,
dataset) in one job."""
from pathlib import Path

import numpy as np

from featvis.core.io import read_json, save_npz, write_sidecar
from featvis.core.runtime import each_layer, start_job
from featvis.vision.data import manifest_hash, read_manifest
from featvis.vision.mining import merge_topk, nonfinite_summary, topk_from_stats

sm = snakemake  # noqa: F821 - injected by Snakemake
start_job(sm.log)
dataset_hash = manifest_hash(read_manifest(sm.input.manifest))


def merged(layer: str, sign: str) -> dict:
    if sm.params.from_features[sign]:  # the features stage's per-image maxima (minima), streamed from disk
        values, where, meta_path = sm.params.stats[f"{layer}/{sign}"]
        meta = read_json(meta_path)
        topk = topk_from_stats(np.load(values, mmap_mode="r"), np.load(where, mmap_mode="r"), sm.params.k,
                               spatial=tuple(meta["spatial"]), negative=sign == "min", layer=layer)
        # the features stage counted the non-finite activations (absent: made before they were counted)
        topk["nonfinite_activations"] = np.array(meta.get("nonfinite", {}).get("activations", -1), np.int64)
        return topk
    files = [Path(shard) / f"{layer}.npz" for shard in sm.input.shards if Path(shard).parent.name == sign]
    # shards past the end are empty
    return merge_topk([dict(np.load(f)) for f in files if f.exists()], sm.params.k, layer=layer)


for (layer, sign), topk_path, meta_path in each_layer(zip(sm.params.tables, sm.output.topk, sm.output.meta)):
    topk = merged(layer, sign)
    save_npz(topk_path, **topk)
    write_sidecar(meta_path, model=sm.params.model, dataset=sm.params.dataset, layer=layer,
                  k=int(topk["value"].shape[1]), k_configured=sm.params.k,  # k is capped at the number of images
                  negative=bool(topk["negative"]), channels=int(topk["value"].shape[0]),
                  spatial=topk["spatial"].tolist(), source="features" if sm.params.from_features[sign] else "miner",
                  dataset_hash=dataset_hash, nonfinite=nonfinite_summary(topk),
                  ranking="distinct images per channel, each at its spatial max (min); ties to the lower image index; "
                          "an image whose map holds a NaN or infinity is left out of that channel's ranking")
