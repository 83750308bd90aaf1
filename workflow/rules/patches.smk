# Stage patches: top-K maximally (optionally minimally) activating image patches per
# channel, cut at each layer's exact receptive field. By default both come from the
# features stage's cached per-image maxima and minima; with `source: images`, one mining
# job per shard of the manifest (O(channels x K) state each), merged exactly. Then figures.
# The shard count comes from the shard plan (`patches.shards` or `patches.shard_size`).

PATCHES = config["patches"]


def mined_layers(model, dataset):
    """Patch layers plus the attribution stage's projection layers (which need top-K)."""
    layers = view_layers("patches", model, dataset)
    return layers + [l for l in view_layers("attribution", model, dataset) if l not in layers]


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
        (layer, "max") for layer in mined_layers(model, dataset) if layer not in patch_layers
    ]


def stats_tables(model, dataset):
    """{"layer/sign": the features stage's files} of the tables ranked from its statistics."""
    return {f"{layer}/{sign}": feature_stats(model, dataset, layer, sign)
            for layer, sign in merged_tables(model, dataset) if from_features(sign)}


def patches_merge_inputs(model, dataset):
    """The features stage's statistics of the tables ranked from them, and the miner's shards
    for the signs the miner makes."""
    tables = merged_tables(model, dataset)
    stats = [file for files in stats_tables(model, dataset).values() for file in files]
    inputs = {"manifest": manifest_path(dataset), "stats": list(dict.fromkeys(stats)), "shards": []}
    for sign in dict.fromkeys(sign for _, sign in tables if not from_features(sign)):
        inputs["shards"] += [f"{RESULTS}/patches/{model}/{dataset}/shards/{sign}/{i}"
                             for i in range(n_shards("patches", dataset))]
    return inputs


rule patches_shard:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
    output:
        directory(f"{RESULTS}/patches/{{model}}/{{dataset}}/shards/{{sign}}/{{shard}}"),
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: mined_layers(wc.model, wc.dataset),
        k=PATCHES["k"],
        negative=lambda wc: wc.sign == "min",
        batch_size=PATCHES["batch_size"],
        workers=config["features"]["workers"],
        shard=lambda wc: int(wc.shard),
        n_shards=lambda wc: n_shards("patches", wc.dataset),
        compute=compute_params(),
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=per_images(3000, 20, "patches"),
        runtime=per_images(10, 5, "patches"),
    wildcard_constraints:
        sign="max|min",
    log:
        "logs/patches/{model}/{dataset}/{sign}.shard{shard}.log",
    script:
        "../../scripts/patches_shard.py"


# Merges and figures: one job per (model, dataset) for all its layers and signs.
for _model, _dataset in analysis_pairs():
    _tables = merged_tables(_model, _dataset)
    _shown = [(layer, sign) for layer in view_layers("patches", _model, _dataset) for sign in patch_signs()]
    _base = f"{RESULTS}/patches/{_model}/{_dataset}"
    if not _tables:
        continue

    rule:
        name:
            stage_rule("patches_merge", _model, _dataset)
        input:
            **patches_merge_inputs(_model, _dataset),
        output:
            topk=[f"{_base}/{layer}/top_{sign}.npz" for layer, sign in _tables],
            meta=[f"{_base}/{layer}/top_{sign}.json" for layer, sign in _tables],
        params:
            model=_model,
            dataset=_dataset,
            tables=_tables,
            k=PATCHES["k"],
            from_features={sign: from_features(sign) for sign in ("max", "min")},
            stats=stats_tables(_model, _dataset),
        resources:
            mem_mb=per_images(1000, 2, dataset=_dataset),
            runtime=per_images(5, 0.05, dataset=_dataset),
        log:
            f"logs/patches/{_model}/{_dataset}/merge.log",
        script:
            "../../scripts/patches_merge.py"

    if not _shown:
        continue

    rule:
        name:
            stage_rule("patches_figures", _model, _dataset)
        input:
            topk=[f"{_base}/{layer}/top_{sign}.npz" for layer, sign in _shown],
            manifest=manifest_path(_dataset),
            fields=fields_path(_model),
        output:
            grid=[
                report(
                    f"{_base}/{layer}/grid_{sign}.png",
                    caption="../report/patches_grid.rst",
                    category="Top-K patches",
                    labels={"model": _model, "layer": layer, "figure": f"top {sign} patches"},
                )
                for layer, sign in _shown
            ],
            units=[directory(f"{RESULTS}/units/{_model}/{layer}/patches_{sign}/{_dataset}") for layer, sign in _shown],
        params:
            model=_model,
            layers=[layer for layer, _ in _shown],
            grid_channels=PATCHES["grid_channels"],
            dpi=config["figures"]["dpi"],
        resources:
            mem_mb=2000,
            runtime=30,
        log:
            f"logs/patches/{_model}/{_dataset}/figures.log",
        script:
            "../../scripts/patches_figures.py"


def patches_targets():
    """Every output the config asks for: top-K tables, grids and every channel's unit pictures."""
    return [
        path
        for model, dataset in analysis_pairs()
        for layer in view_layers("patches", model, dataset)
        for sign in patch_signs()
        for path in [f"{RESULTS}/patches/{model}/{dataset}/{layer}/{name}"
                     for name in (f"top_{sign}.npz", f"top_{sign}.json", f"grid_{sign}.png")]
        + [f"{RESULTS}/units/{model}/{layer}/patches_{sign}/{dataset}"]
    ]
