# Stage neighbors: the k nearest images of configured queries in a layer's pooled
# feature space (from the features stage), by L2 and cosine distance.

NEIGHBORS = config["neighbors"]


rule neighbors:
    input:
        features=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/{NEIGHBORS['pool']}.npy",
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        table=f"{RESULTS}/neighbors/{{model}}/{{dataset}}/{{layer}}/neighbors.csv",
        arrays=f"{RESULTS}/neighbors/{{model}}/{{dataset}}/{{layer}}/neighbors.npz",
        figures=[
            report(
                f"{RESULTS}/neighbors/{{model}}/{{dataset}}/{{layer}}/{metric}.png",
                caption="../report/neighbors.rst",
                category="Nearest neighbours",
                labels={"model": "{model}", "layer": "{layer}", "figure": metric},
            )
            for metric in NEIGHBORS["metrics"]
        ],
    params:
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        spec=lambda wc: model_spec(wc.model),
        k=NEIGHBORS["k"],
        metrics=NEIGHBORS["metrics"],
        index=NEIGHBORS["index"],
        pool=NEIGHBORS["pool"],
        queries=NEIGHBORS["queries"],
        n_queries=NEIGHBORS["n_queries"],
        dpi=config["figures"]["dpi"],
        compute=compute_params(),
    resources:
        mem_mb=per_images(2000, 10),
        runtime=per_images(10, 1),
    log:
        "logs/neighbors/{model}/{dataset}/{layer}.log",
    script:
        "../../scripts/neighbors.py"


def neighbors_targets():
    return [
        f"{RESULTS}/neighbors/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in view_layers("neighbors", model, dataset)
        for name in ["neighbors.csv", "neighbors.npz", *(f"{metric}.png" for metric in NEIGHBORS["metrics"])]
    ]
