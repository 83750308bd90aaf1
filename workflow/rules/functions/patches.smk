# Helper functions of patches.smk (kept apart from its rules: snakemake --lint).


def mined_layers(model, dataset):
    """Patch layers plus the attribution stage's projection layers (which need top-K)."""
    layers = view_layers("patches", model, dataset)
    return layers + [
        l for l in view_layers("attribution", model, dataset) if l not in layers
    ]


def patch_signs():
    return ["max", "min"] if PATCHES["negative"] else ["max"]


def from_features(sign):
    """Top-K (bottom-K) patches come from the features stage's per-image maxima (minima) and
    their positions, with no second pass over the images and the miner's result exactly,
    unless `patches.source: images`."""
    return PATCHES["source"] == "features"


def feature_stats(model, dataset, layer, sign):
    """The features stage's files a (layer, sign) table is ranked from: values, positions, meta."""
    base = f"{RESULTS}/features/{model}/{dataset}/{layer}"
    return [f"{base}/{sign}.npy", f"{base}/arg{sign}.npy", f"{base}/meta.json"]


def merged_tables(model, dataset):
    """(layer, sign) of every top-K table a (model, dataset) needs: each patch layer with each
    sign, and the attribution stage's other layers with the maxima."""
    patch_layers = view_layers("patches", model, dataset)
    return [(layer, sign) for layer in patch_layers for sign in patch_signs()] + [
        (layer, "max")
        for layer in mined_layers(model, dataset)
        if layer not in patch_layers
    ]


def stats_tables(model, dataset):
    """{"layer/sign": the features stage's files} of the tables ranked from its statistics."""
    return {
        f"{layer}/{sign}": feature_stats(model, dataset, layer, sign)
        for layer, sign in merged_tables(model, dataset)
        if from_features(sign)
    }


def patches_merge_inputs(model, dataset):
    """The features stage's statistics of the tables ranked from them, and the miner's shards
    for the signs the miner makes."""
    tables = merged_tables(model, dataset)
    stats = [file for files in stats_tables(model, dataset).values() for file in files]
    inputs = {
        "manifest": manifest_path(dataset),
        "stats": list(dict.fromkeys(stats)),
        "shards": [],
    }
    for sign in dict.fromkeys(sign for _, sign in tables if not from_features(sign)):
        inputs["shards"] += [
            f"{RESULTS}/patches/{model}/{dataset}/shards/{sign}/{i}"
            for i in range(n_shards("patches", dataset))
        ]
    return inputs


def patches_targets():
    """Every output the config asks for: top-K tables, grids and every channel's unit pictures."""
    return [
        path
        for model, dataset in analysis_pairs()
        for layer in view_layers("patches", model, dataset)
        for sign in patch_signs()
        for path in [
            f"{RESULTS}/patches/{model}/{dataset}/{layer}/{name}"
            for name in (f"top_{sign}.npz", f"top_{sign}.json", f"grid_{sign}.png")
        ]
        + [f"{RESULTS}/units/{model}/{layer}/patches_{sign}/{dataset}"]
    ]
