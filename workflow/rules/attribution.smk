# Stage attribution: DeconvNet (or guided backprop) projections of each channel's top
# activations next to its top patches; CAM and Grad-CAM class maps over chosen images.

ATTRIBUTION = config["attribution"]


# Projections: one job per (model, dataset) for all its layers (one process start, one model load).
for _model, _dataset in analysis_pairs():
    _layers = view_layers("attribution", _model, _dataset)
    _method = ATTRIBUTION["method"]
    if not _layers:
        continue

    rule:
        name:
            stage_rule("attribution_deconv", _model, _dataset)
        input:
            topk=[
                f"{RESULTS}/patches/{_model}/{_dataset}/{layer}/top_max.npz"
                for layer in _layers
            ],
            manifest=manifest_path(_dataset),
            weights=model_inputs(_model),
            fields=fields_path(_model),
        output:
            figure=[
                report(
                    f"{RESULTS}/attribution/{_model}/{_dataset}/{layer}/{_method}.png",
                    caption="../report/attribution_deconv.rst",
                    category="Attribution",
                    labels={"model": _model, "layer": layer, "figure": _method},
                )
                for layer in _layers
            ],
            units=[
                directory(f"{RESULTS}/units/{_model}/{layer}/{_method}/{_dataset}")
                for layer in _layers
            ],
        log:
            f"logs/attribution/{_model}/{_dataset}/deconv.log",
        conda:
            FEATVIS_ENV
        threads: config["threads"]
        resources:
            gpu=gpu_jobs(),
            mem_mb=4000,
            runtime=60,
        params:
            spec=model_spec(_model),
            model=_model,
            layers=_layers,
            method=_method,
            channels=ATTRIBUTION["channels"],
            dpi=config["figures"]["dpi"],
            compute=compute_params(),
        script:
            "../../scripts/attribution_deconv.py"


rule attribution_cam:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
    output:
        figure=report(
            f"{RESULTS}/attribution/{{model}}/{{dataset}}/class_maps.png",
            caption="../report/attribution_cam.rst",
            category="Attribution",
            labels={"model": "{model}", "figure": "class activation maps"},
        ),
        arrays=f"{RESULTS}/attribution/{{model}}/{{dataset}}/class_maps.npz",
        meta=f"{RESULTS}/attribution/{{model}}/{{dataset}}/class_maps.json",
    log:
        "logs/attribution/{model}/{dataset}/class_maps.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=4000,
        runtime=60,
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: view_layers("cam", wc.model, wc.dataset),
        cam=ATTRIBUTION["cam"],
        images=ATTRIBUTION["images"],
        n_images=ATTRIBUTION["n_images"],
        classes=ATTRIBUTION["classes"],
        dpi=config["figures"]["dpi"],
        compute=compute_params(),
    script:
        "../../scripts/attribution_cam.py"


include: "functions/attribution.smk"
