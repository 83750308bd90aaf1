# Helper functions of gallery.smk (kept apart from its rules: snakemake --lint).


def gallery_layers(model):
    """Layers that get pages: every analysis layer of the model, then render-job layers."""
    return _gallery_layers(config, model)


def _stage_targets():
    return (
        patches_targets()
        + render_targets()
        + neighbors_targets()
        + embed_targets()
        + attribution_targets()
        + weights_targets()
        + trust_targets()
    )


def _layer_of(path, model):
    """The (model, layer) a results figure belongs to, from its place in results/, or None."""
    parts = Path(path).parts
    if len(parts) == 6 and parts[1] == "render" and parts[2] == model:
        return parts[3]  # results/render/<model>/<layer>/<job>/<file>
    if (
        len(parts) == 6
        and parts[1] in ("patches", "neighbors", "embed", "attribution")
        and parts[2] == model
    ):
        return parts[4]  # results/<stage>/<model>/<dataset>/<layer>/<file>
    return None


def gallery_layer_inputs(model, layer):
    """The files a layer's pages show: its unit pictures' folders, its figures and its maxima."""
    targets = _stage_targets()
    units = f"{RESULTS}/units/{model}/{layer}/"
    return {
        "units": [t for t in targets if t.startswith(units)],
        "figures": [
            t for t in targets if t.endswith(".png") and _layer_of(t, model) == layer
        ],
        "maxima": gallery_maxima(model, layer),
        "maps": gallery_maps(model, layer),
        "concepts": concept_quality(model, layer)[
            :1
        ],  # the layer's concepts (featvis.gallery.concepts)
        "concept_units": concept_units(model, layer),
    }


def gallery_maps(model, layer):
    """{dataset: the embed stage's coordinates.csv} for the layer's interactive embedding maps."""
    return {
        d: f"{RESULTS}/embed/{m}/{d}/{layer}/coordinates.csv"
        for m, d in analysis_pairs()
        if m == model and layer in view_layers("embed", m, d)
    }


def gallery_maxima(model, layer):
    """{dataset: features max.npy} for each dataset the layer is analysed on."""
    return {
        d: f"{RESULTS}/features/{m}/{d}/{layer}/max.npy"
        for m, d in analysis_pairs()
        if m == model and layer in analysis_layers(m, d)
    }


def gallery_model_figures(model):
    """(title, path) of the model's figures: first-layer filters, class maps, render figures."""
    figures = [("first-layer filters", f"{RESULTS}/weights/{model}/filters.png")]
    figures += [
        (f"class activation maps on {d}", t)
        for m, d in analysis_pairs()
        if m == model
        for t in attribution_targets()
        if t == f"{RESULTS}/attribution/{m}/{d}/class_maps.png"
    ]
    for kind, jobs in config["render"]["figures"].items():
        figures += [
            (f"render {kind}: {name}", f"{RESULTS}/render/figures/{kind}/{name}.png")
            for name, job in jobs.items()
            if job["model"] == model
        ]
    return figures


def gallery_proteins():
    return bool(attention_targets())


def gallery_targets():
    if not config["gallery"]["enabled"]:
        return []
    out = [f"{GALLERY}/index.html", f"{GALLERY}/assets"]
    out += [f"{GALLERY}/proteins"] if gallery_proteins() else []
    for model in config["models"]:
        out += [f"{GALLERY}/{model}/index.html", f"{GALLERY}/{model}/figures"]
        out += [f"{GALLERY}/{model}/{layer}" for layer in gallery_layers(model)]
    return out
