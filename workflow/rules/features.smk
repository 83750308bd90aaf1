# Stage features: per-layer activation statistics, one job per shard, then merged.
# The shard count comes from the shard plan (`features.shards` or `features.shard_size`).

FEATURES = config["features"]


rule features_shard:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
    output:
        directory(f"{RESULTS}/features/{{model}}/{{dataset}}/shards/{{shard}}"),
    log:
        "logs/features/{model}/{dataset}/shard{shard}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=per_images(3000, 20, "features"),
        runtime=per_images(10, 5, "features"),
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: analysis_layers(wc.model, wc.dataset),
        batch_size=FEATURES["batch_size"],
        workers=config["features"]["workers"],
        shard=lambda wc: int(wc.shard),
        n_shards=lambda wc: n_shards("features", wc.dataset),
        compute=compute_params(),
    script:
        "../../scripts/features_shard.py"


# One merge job per (model, dataset) for all its layers: one process start, not one per layer.
for _model, _dataset in analysis_pairs():
    _layers = analysis_layers(_model, _dataset)
    _base = f"{RESULTS}/features/{_model}/{_dataset}"

    rule:
        name:
            stage_rule("features_merge", _model, _dataset)
        input:
            shards=[
                f"{_base}/shards/{i}" for i in range(n_shards("features", _dataset))
            ],
            manifest=manifest_path(_dataset),
        output:
            mean=[f"{_base}/{layer}/mean.npy" for layer in _layers],
            max=[f"{_base}/{layer}/max.npy" for layer in _layers],
            argmax=[f"{_base}/{layer}/argmax.npy" for layer in _layers],
            min=[f"{_base}/{layer}/min.npy" for layer in _layers],
            argmin=[f"{_base}/{layer}/argmin.npy" for layer in _layers],
            meta=[f"{_base}/{layer}/meta.json" for layer in _layers],
        log:
            f"logs/features/{_model}/{_dataset}/merge.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=per_images(1000, 10, "features", _dataset),
            runtime=per_images(5, 0.05, dataset=_dataset),
        params:
            model=_model,
            dataset=_dataset,
            layers=_layers,
            spec=model_spec(_model),
            batch_size=FEATURES["batch_size"],
        script:
            "../../scripts/features_merge.py"


include: "functions/features.smk"
