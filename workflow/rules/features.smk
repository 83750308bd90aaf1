# Stage features: per-layer activation statistics, one job per shard, then merged.


FEATURES = config["features"]


def n_shards():
    return FEATURES["shards"]


rule features_shard:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
    output:
        directory(f"{RESULTS}/features/{{model}}/{{dataset}}/shards/{{shard}}"),
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: analysis_layers(wc.model, wc.dataset),
        batch_size=FEATURES["batch_size"],
        workers=config["features"]["workers"],
        shard=lambda wc: int(wc.shard),
        n_shards=n_shards(),
        compute=compute_params(),
    threads: config["threads"]
    log:
        "logs/features/{model}/{dataset}/shard{shard}.log",
    script:
        "../../scripts/features_shard.py"


rule features_merge:
    input:
        shards=lambda wc: [
            f"{RESULTS}/features/{wc.model}/{wc.dataset}/shards/{i}" for i in range(n_shards())
        ],
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        mean=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/mean.npy",
        max=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/max.npy",
        argmax=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/argmax.npy",
        meta=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/meta.json",
    params:
        model=lambda wc: wc.model,
        dataset=lambda wc: wc.dataset,
        layer=lambda wc: wc.layer,
        spec=lambda wc: model_spec(wc.model),
        batch_size=FEATURES["batch_size"],
    log:
        "logs/features/{model}/{dataset}/{layer}.merge.log",
    script:
        "../../scripts/features_merge.py"


def features_targets():
    return [
        f"{RESULTS}/features/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in analysis_layers(model, dataset)
        for name in ("mean.npy", "max.npy", "argmax.npy", "meta.json")
    ]
