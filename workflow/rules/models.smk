# Stage models: models the pipeline trains itself, and every model's layer table. The
# table's one trace also caches the exact receptive fields of the analysis layers
# (fields.npz), which the patch and attribution figures read instead of tracing.


def training_start(model):
    """A trained model's `weights:` file, where fine-tuning starts: an input, so a new file retrains."""
    weights = config["models"][model].get("weights")
    return [weights] if weights and weights != "random" else []


rule train_model:
    input:
        manifest=lambda wc: manifest_path(config["models"][wc.model]["train"]["dataset"]),
        start=lambda wc: training_start(wc.model),
    output:
        weights=f"{RESULTS}/models/{{model}}/weights.pt",
        metrics=f"{RESULTS}/models/{{model}}/training.json",
    params:
        spec=lambda wc: config["models"][wc.model],  # with the class names the start checks filled in
        compute=compute_params(),
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    log:
        "logs/train/{model}.log",
    script:
        "../../scripts/train_model.py"


def field_layers(model):
    """Every analysis layer of the model, on any dataset: the views pick theirs from these."""
    return list(dict.fromkeys(l for a in config["analyses"] if a["model"] == model for l in a["layers"]))


def fields_path(model):
    return f"{RESULTS}/models/{model}/fields.npz"


rule layer_table:
    input:
        weights=lambda wc: model_inputs(wc.model),
    output:
        table=report(
            f"{RESULTS}/models/{{model}}/layers.tsv",
            caption="../report/layers.rst",
            category="Models",
            labels={"model": "{model}", "figure": "layer table"},
        ),
        fields=fields_path("{model}"),
    params:
        spec=lambda wc: model_spec(wc.model),
        layers=lambda wc: field_layers(wc.model),
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/layers/{model}.log",
    script:
        "../../scripts/layer_table.py"


def models_targets():
    trained = [f"{RESULTS}/models/{name}/training.json" for name, spec in config["models"].items() if "train" in spec]
    return [f"{RESULTS}/models/{name}/layers.tsv" for name in config["models"]] + trained
