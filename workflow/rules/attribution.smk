# Stage attribution: DeconvNet (or guided backprop) projections of each channel's top
# activations next to its top patches; CAM and Grad-CAM class maps over chosen images.

ATTRIBUTION = config.get("attribution", {})


def cam_layers(model, dataset):
    """Configured Grad-CAM layers, or every analysis layer (the job then skips those
    without a spatial grid, which only an explicit choice makes an error)."""
    chosen = ATTRIBUTION.get("cam_layers", {}).get(model)
    return list(chosen) if chosen is not None else analysis_layers(model, dataset)


def cam_layers_explicit(model):
    return model in ATTRIBUTION.get("cam_layers", {})


rule attribution_deconv:
    input:
        topk=f"{RESULTS}/patches/{{model}}/{{dataset}}/{{layer}}/top_max.npz",
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
        fields=lambda wc: fields_path(wc.model),
    output:
        figure=report(
            f"{RESULTS}/attribution/{{model}}/{{dataset}}/{{layer}}/{ATTRIBUTION.get('method', 'deconvnet')}.png",
            caption="../report/attribution_deconv.rst",
            category="Attribution",
            labels={"model": "{model}", "layer": "{layer}", "figure": ATTRIBUTION.get("method", "deconvnet")},
        ),
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        method=ATTRIBUTION.get("method", "deconvnet"),
        channels=ATTRIBUTION.get("channels", 4),
        dpi=PLOT.get("dpi", 100),
        compute=compute_params(),
    threads: config.get("threads", 2)
    log:
        "logs/attribution/{model}/{dataset}/{layer}.deconv.log",
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
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: cam_layers(wc.model, wc.dataset),
        explicit=lambda wc: cam_layers_explicit(wc.model),
        cam=ATTRIBUTION.get("cam", "auto"),
        images=ATTRIBUTION.get("images", []),
        n_images=ATTRIBUTION.get("n_images", 6),
        classes=ATTRIBUTION.get("classes", []),
        dpi=PLOT.get("dpi", 100),
        compute=compute_params(),
    threads: config.get("threads", 2)
    log:
        "logs/attribution/{model}/{dataset}/class_maps.log",
    script:
        "../../scripts/attribution_cam.py"


def attribution_targets():
    method = ATTRIBUTION.get("method", "deconvnet")
    return [
        f"{RESULTS}/attribution/{model}/{dataset}/{layer}/{method}.png"
        for model, dataset in analysis_pairs()
        for layer in view_layers("attribution", model, dataset)
    ] + [f"{RESULTS}/attribution/{model}/{dataset}/class_maps.png" for model, dataset in analysis_pairs()]
