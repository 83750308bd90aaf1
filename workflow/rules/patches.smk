# Stage patches: top-K maximally (optionally minimally) activating image patches per
# channel, cut at each layer's exact receptive field. By default the maxima come from the
# features stage's cached per-image maxima; otherwise (source: images, or negative
# patches) one mining job per shard of the manifest (O(channels x K) state each), merged
# exactly. Then figures.

PATCHES = config["patches"]


def mined_layers(model, dataset):
    """Patch layers plus the attribution stage's projection layers (which need top-K)."""
    layers = view_layers("patches", model, dataset)
    return layers + [l for l in view_layers("attribution", model, dataset) if l not in layers]


def patch_signs():
    return ["max", "min"] if PATCHES["negative"] else ["max"]


def from_features(sign):
    """Maximal patches come from the features stage's per-image maxima (no second pass,
    identical result) unless `patches.source: images`; minimal ones need the miner's pass."""
    return sign == "max" and PATCHES["source"] == "features"


def patches_merge_inputs(wc):
    if from_features(wc.sign):
        base = f"{RESULTS}/features/{wc.model}/{wc.dataset}/{wc.layer}"
        return {"max": f"{base}/max.npy", "argmax": f"{base}/argmax.npy", "features_meta": f"{base}/meta.json",
                "manifest": manifest_path(wc.dataset)}
    shards = [f"{RESULTS}/patches/{wc.model}/{wc.dataset}/shards/{wc.sign}/{i}" for i in range(n_shards("patches", wc.dataset))]
    return {"shards": shards, "manifest": manifest_path(wc.dataset)}


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
        mem_mb=per_images(3000, 20, "patches"),
        runtime=per_images(10, 5, "patches"),
    wildcard_constraints:
        sign="max|min",
    log:
        "logs/patches/{model}/{dataset}/{sign}.shard{shard}.log",
    script:
        "../../scripts/patches_shard.py"


rule patches_merge:
    input:
        unpack(patches_merge_inputs),
    output:
        topk=f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/top_{{sign}}.npz",
        meta=f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/top_{{sign}}.json",
    params:
        model=lambda wc: wc.model,
        dataset=lambda wc: wc.dataset,
        layer=lambda wc: wc.layer,
        k=PATCHES["k"],
        from_features=lambda wc: from_features(wc.sign),
    resources:
        mem_mb=per_images(1000, 2),
        runtime=per_images(5, 0.05),
    wildcard_constraints:
        sign="max|min",
    log:
        "logs/patches/{model}/{dataset}/{layer}.{sign}.merge.log",
    script:
        "../../scripts/patches_merge.py"


rule patches_figures:
    input:
        topk=f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/top_{{sign}}.npz",
        manifest=lambda wc: manifest_path(wc.dataset),
        fields=lambda wc: fields_path(wc.model),
    output:
        grid=report(
            f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/grid_{{sign}}.png",
            caption="../report/patches_grid.rst",
            category="Top-K patches",
            labels={"model": "{model}", "layer": "{layer}", "figure": "top {sign} patches"},
        ),
        units=directory(f"{RESULTS}/units/{{model}}/{{layer}}/patches_{{sign}}/{{dataset}}"),
    params:
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        grid_channels=PATCHES["grid_channels"],
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=2000,
        runtime=30,
    wildcard_constraints:
        sign="max|min",
    log:
        "logs/patches/{model}/{dataset}/{layer}.{sign}.figures.log",
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
