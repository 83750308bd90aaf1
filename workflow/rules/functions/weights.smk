# Helper functions of weights.smk (kept apart from its rules: snakemake --lint).


def weights_targets():
    return [f"{RESULTS}/weights/{name}/filters.png" for name in config["models"]]
