# Stage weights: the first-layer filter grid of every model.


rule filters:
    input:
        weights=lambda wc: model_inputs(wc.model),
    output:
        report(
            f"{RESULTS}/weights/{{model}}/filters.png",
            caption="../report/filters.rst",
            category="First-layer filters",
            labels={"model": "{model}", "figure": "filters"},
        ),
    log:
        "logs/filters/{model}.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        dpi=config["figures"]["dpi"],
        cell_inches=config["figures"]["filter_cell_inches"],
    script:
        "../../scripts/filters.py"


include: "functions/weights.smk"
