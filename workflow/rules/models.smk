include: "functions/models.smk"


rule train_model:
    input:
        manifest=lambda wc: manifest_path(
            config["models"][wc.model]["train"]["dataset"]
        ),
        start=lambda wc: training_start(wc.model),
    output:
        weights=f"{RESULTS}/models/{{model}}/weights.pt",
        metrics=f"{RESULTS}/models/{{model}}/training.json",
    log:
        "logs/train/{model}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=120,
    params:
        spec=lambda wc: config["models"][wc.model],  # with the class names the start checks filled in
        compute=compute_params(),
    script:
        "../../scripts/train_model.py"


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
    log:
        "logs/layers/{model}.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=lambda wc: model_spec(wc.model),
        layers=lambda wc: field_layers(wc.model),
    script:
        "../../scripts/layer_table.py"
