"""Rule concepts_encode: one shard of the manifest streamed through every fitted dictionary of a model;
per (layer, method), the shard's top-K images per concept and its code statistics (merged exactly
by concepts_pages)."""
from pathlib import Path

import numpy as np

from featvis.concepts.methods import from_state
from featvis.concepts.stream import Encoder, layer_batches
from featvis.core.io import save_npz
from featvis.vision.data import read_manifest
from shard_job import ShardJob, run_shard_job  # scripts/, on PYTHONPATH (Snakefile)

sm = snakemake  # noqa: F821 - injected by Snakemake


def label_indices(manifest_path: str) -> tuple[np.ndarray, list[str]]:
    """Each image's label as an index into the sorted label names (-1: no label)."""
    labels = read_manifest(manifest_path)["label"].fillna("").astype(str).tolist()
    names = sorted({label for label in labels if label})
    index = {name: i for i, name in enumerate(names)}
    return np.array([index.get(label, -1) for label in labels], np.int64), names


def work(job: ShardJob) -> None:
    out = Path(sm.output[0])
    out.mkdir(parents=True, exist_ok=True)
    labels, names = label_indices(sm.input.manifest)
    encoders = {(layer, method): Encoder(from_state(dict(np.load(path))), sm.params.top_k, labels, len(names))
                for (layer, method), path in zip(sm.params.pairs, sm.input.dictionaries)}
    if not job.paths:
        return
    for start, acts in layer_batches(job.model, job.paths, sm.params.layers, job.device, sm.params.batch_size,
                                     sm.params.workers, offset=job.start):
        for (layer, _), encoder in encoders.items():
            encoder.add(start, acts[layer])
    for (layer, method), encoder in encoders.items():
        top, stats = encoder.result()
        save_npz(out / f"{layer}.{method}.npz", **{f"top_{k}": v for k, v in top.items()},
                 **{f"stats_{k}": v for k, v in stats.arrays().items()})


run_shard_job(sm, "concepts", work)
