# Stage patches: top-K maximally (optionally minimally) activating image patches per
# channel, cut at each layer's exact receptive field. By default both come from the
# features stage's cached per-image maxima and minima; with `source: images`, one mining
# job per shard of the manifest (O(channels x K) state each), merged exactly. Then figures.
# The shard count comes from the shard plan (`patches.shards` or `patches.shard_size`).

PATCHES = config["patches"]


include: "functions/patches.smk"


rule patches_shard:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
    output:
        directory(f"{RESULTS}/patches/{{model}}/{{dataset}}/shards/{{sign}}/{{shard}}"),
    log:
        "logs/patches/{model}/{dataset}/{sign}.shard{shard}.log",
    wildcard_constraints:
        sign="max|min",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=per_images(3000, 20, "patches"),
        runtime=per_images(10, 5, "patches"),
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
    script:
        "../../scripts/patches_shard.py"


# Merges and figures: one job per (model, dataset) for all its layers and signs.
for _model, _dataset in analysis_pairs():
    _tables = merged_tables(_model, _dataset)
    _shown = [
        (layer, sign)
        for layer in view_layers("patches", _model, _dataset)
        for sign in patch_signs()
    ]
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
        log:
            f"logs/patches/{_model}/{_dataset}/merge.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=per_images(1000, 2, dataset=_dataset),
            runtime=per_images(5, 0.05, dataset=_dataset),
        params:
            model=_model,
            dataset=_dataset,
            tables=_tables,
            k=PATCHES["k"],
            from_features={sign: from_features(sign) for sign in ("max", "min")},
            stats=stats_tables(_model, _dataset),
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
                    labels={
                        "model": _model,
                        "layer": layer,
                        "figure": f"top {sign} patches",
                    },
                )
                for layer, sign in _shown
            ],
            units=[
                directory(
                    f"{RESULTS}/units/{_model}/{layer}/patches_{sign}/{_dataset}"
                )
                for layer, sign in _shown
            ],
        log:
            f"logs/patches/{_model}/{_dataset}/figures.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            model=_model,
            layers=[layer for layer, _ in _shown],
            grid_channels=PATCHES["grid_channels"],
            dpi=config["figures"]["dpi"],
        script:
            "../../scripts/patches_figures.py"
