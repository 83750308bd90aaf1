# Stage neighbors: the k nearest images of configured queries in a layer's pooled
# feature space (from the features stage), by L2 and cosine distance.

NEIGHBORS = config.get("neighbors", {})


rule neighbors:
    input:
        features=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/{NEIGHBORS.get('pool', 'mean')}.npy",
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
            for metric in NEIGHBORS.get("metrics", ["l2", "cosine"])
        ],
    params:
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        image_size=lambda wc: config["models"][wc.model].get("image_size"),
        spec=lambda wc: model_spec(wc.model),
        k=NEIGHBORS.get("k", 8),
        metrics=NEIGHBORS.get("metrics", ["l2", "cosine"]),
        index=NEIGHBORS.get("index", "exact"),
        pool=NEIGHBORS.get("pool", "mean"),
        queries=NEIGHBORS.get("queries", []),
        n_queries=NEIGHBORS.get("n_queries", 6),
        dpi=PLOT.get("dpi", 100),
        compute=compute_params(),
    log:
        "logs/neighbors/{model}/{dataset}/{layer}.log",
    script:
        "../../scripts/neighbors.py"


def neighbors_targets():
    return [
        f"{RESULTS}/neighbors/{model}/{dataset}/{layer}/neighbors.csv"
        for model, dataset in analysis_pairs()
        for layer in view_layers("neighbors", model, dataset)
    ]
