# Helper functions of features.smk (kept apart from its rules: snakemake --lint).


def features_targets():
    return [
        f"{RESULTS}/features/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in analysis_layers(model, dataset)
        for name in (
            "mean.npy",
            "max.npy",
            "argmax.npy",
            "min.npy",
            "argmin.npy",
            "meta.json",
        )
    ]
