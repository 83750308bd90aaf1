# Helper functions of attribution.smk (kept apart from its rules: snakemake --lint).


def attribution_targets():
    method = ATTRIBUTION["method"]
    return [
        path
        for model, dataset in analysis_pairs()
        for layer in view_layers("attribution", model, dataset)
        for path in (
            f"{RESULTS}/attribution/{model}/{dataset}/{layer}/{method}.png",
            f"{RESULTS}/units/{model}/{layer}/{method}/{dataset}",
        )
    ] + [
        f"{RESULTS}/attribution/{model}/{dataset}/{name}"
        for model, dataset in analysis_pairs()
        if view_layers("cam", model, dataset) or ATTRIBUTION["cam"] is True
        for name in ("class_maps.png", "class_maps.npz", "class_maps.json")
    ]
