# Helper functions of models.smk (kept apart from its rules: snakemake --lint).


# Stage models: models the pipeline trains itself, and every model's layer table. The
# table's one trace also caches the exact receptive fields of the analysis layers
# (fields.npz), which the patch and attribution figures read instead of tracing.


def training_start(model):
    """A trained model's `weights:` file, where fine-tuning starts: an input, so a new file retrains."""
    weights = config["models"][model].get("weights")
    return [weights] if weights and weights != "random" else []


def field_layers(model):
    """Every analysis layer of the model, on any dataset: the views pick theirs from these."""
    return list(
        dict.fromkeys(
            l for a in config["analyses"] if a["model"] == model for l in a["layers"]
        )
    )


def fields_path(model):
    return f"{RESULTS}/models/{model}/fields.npz"


def models_targets():
    trained = [
        f"{RESULTS}/models/{name}/training.json"
        for name, spec in config["models"].items()
        if "train" in spec
    ]
    return [
        f"{RESULTS}/models/{name}/layers.tsv" for name in config["models"]
    ] + trained
