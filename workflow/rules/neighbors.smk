# Stage neighbors: the k nearest images of configured queries in a layer's pooled
# feature space (from the features stage), by L2 and cosine distance.

NEIGHBORS = config["neighbors"]


# One job per (model, dataset) for all its layers: one process start and one model load.
for _model, _dataset in analysis_pairs():
    _layers = view_layers("neighbors", _model, _dataset)
    _base = f"{RESULTS}/neighbors/{_model}/{_dataset}"
    if not _layers:
        continue

    rule:
        name:
            stage_rule("neighbors", _model, _dataset)
        input:
            features=[
                f"{RESULTS}/features/{_model}/{_dataset}/{layer}/{NEIGHBORS['pool']}.npy"
                for layer in _layers
            ],
            manifest=manifest_path(_dataset),
        output:
            table=[f"{_base}/{layer}/neighbors.csv" for layer in _layers],
            arrays=[f"{_base}/{layer}/neighbors.npz" for layer in _layers],
            figures=[
                report(
                    f"{_base}/{layer}/{metric}.png",
                    caption="../report/neighbors.rst",
                    category="Nearest neighbours",
                    labels={"model": _model, "layer": layer, "figure": metric},
                )
                for layer in _layers
                for metric in NEIGHBORS["metrics"]
            ],
        log:
            f"logs/neighbors/{_model}/{_dataset}/neighbors.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=per_images(2000, 10, dataset=_dataset),
            runtime=per_images(10, 1, dataset=_dataset),
        params:
            model=_model,
            layers=_layers,
            spec=model_spec(_model),
            k=NEIGHBORS["k"],
            metrics=NEIGHBORS["metrics"],
            index=NEIGHBORS["index"],
            pool=NEIGHBORS["pool"],
            queries=NEIGHBORS["queries"],
            n_queries=NEIGHBORS["n_queries"],
            dpi=config["figures"]["dpi"],
            compute=compute_params(),
        script:
            "../../scripts/neighbors.py"


def neighbors_targets():
    return [
        f"{RESULTS}/neighbors/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in view_layers("neighbors", model, dataset)
        for name in [
            "neighbors.csv",
            "neighbors.npz",
            *(f"{metric}.png" for metric in NEIGHBORS["metrics"]),
        ]
    ]
