# Stage features: per-layer activation statistics, one job per shard, then merged.
# The shard count comes from the shard plan (`features.shards` or `features.shard_size`).

FEATURES = config["features"]


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
        n_shards=lambda wc: n_shards("features", wc.dataset),
        compute=compute_params(),
    threads: config["threads"]
    resources:
        mem_mb=per_images(3000, 20, "features"),
        runtime=per_images(10, 5, "features"),
    log:
        "logs/features/{model}/{dataset}/shard{shard}.log",
    script:
        "../../scripts/features_shard.py"


rule features_merge:
    input:
        shards=lambda wc: [
            f"{RESULTS}/features/{wc.model}/{wc.dataset}/shards/{i}"
            for i in range(n_shards("features", wc.dataset))
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
    resources:
        mem_mb=per_images(1000, 10, "features"),
        runtime=per_images(5, 0.05),
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
