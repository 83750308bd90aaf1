# Stage gallery: a static, offline, Microscope-like site (results/gallery/index.html) built from
# whatever the other stages made. One job per model for its layer and unit pages (one process start,
# not one per layer), one per model page, one for the index and assets, one copying the protein
# reports. The gallery reads files: unit pictures from results/units/<model>/<layer>/, layer
# figures by their place in results/<stage>/<model>/..., and each dataset's per-image maxima.

GALLERY = f"{RESULTS}/gallery"


from featvis.gallery.checks import featured_units, gallery_layers as _gallery_layers


def gallery_layers(model):
    """Layers that get pages: every analysis layer of the model, then render-job layers."""
    return _gallery_layers(config, model)


def _stage_targets():
    return (patches_targets() + render_targets() + neighbors_targets() + embed_targets() + attribution_targets()
            + weights_targets() + trust_targets())


def _layer_of(path, model):
    """The (model, layer) a results figure belongs to, from its place in results/, or None."""
    parts = Path(path).parts
    if len(parts) == 6 and parts[1] == "render" and parts[2] == model:
        return parts[3]  # results/render/<model>/<layer>/<job>/<file>
    if len(parts) == 6 and parts[1] in ("patches", "neighbors", "embed", "attribution") and parts[2] == model:
        return parts[4]  # results/<stage>/<model>/<dataset>/<layer>/<file>
    return None


def gallery_layer_inputs(model, layer):
    """The files a layer's pages show: its unit pictures' folders, its figures and its maxima."""
    targets = _stage_targets()
    units = f"{RESULTS}/units/{model}/{layer}/"
    return {
        "units": [t for t in targets if t.startswith(units)],
        "figures": [t for t in targets if t.endswith(".png") and _layer_of(t, model) == layer],
        "maxima": gallery_maxima(model, layer),
    }


def gallery_maxima(model, layer):
    """{dataset: features max.npy} for each dataset the layer is analysed on."""
    return {d: f"{RESULTS}/features/{m}/{d}/{layer}/max.npy" for m, d in analysis_pairs()
            if m == model and layer in analysis_layers(m, d)}


# Layer and unit pages: one job per model for all its layers.
for _model in config["models"]:
    _pages = {layer: gallery_layer_inputs(_model, layer) for layer in gallery_layers(_model)}
    if not _pages:
        continue

    rule:
        name:
            stage_rule("gallery_layer", _model)
        input:
            units=[path for page in _pages.values() for path in page["units"]],
            figures=[path for page in _pages.values() for path in page["figures"]],
            maxima=[path for page in _pages.values() for path in page["maxima"].values()],
        output:
            [directory(f"{GALLERY}/{_model}/{layer}") for layer in _pages],
        params:
            results=RESULTS,
            model=_model,
            pages=_pages,
        resources:
            mem_mb=2000,
            runtime=30,
        log:
            f"logs/gallery/{_model}/layers.log",
        script:
            "../../scripts/gallery_layer.py"


def gallery_model_figures(model):
    """(title, path) of the model's figures: first-layer filters, class maps, render figures."""
    figures = [("first-layer filters", f"{RESULTS}/weights/{model}/filters.png")]
    figures += [(f"class activation maps on {d}", t) for m, d in analysis_pairs() if m == model
                for t in attribution_targets() if t == f"{RESULTS}/attribution/{m}/{d}/class_maps.png"]
    for kind, jobs in config["render"]["figures"].items():
        figures += [(f"render {kind}: {name}", f"{RESULTS}/render/figures/{kind}/{name}.png")
                    for name, job in jobs.items() if job["model"] == model]
    return figures


rule gallery_model:
    input:
        table=f"{RESULTS}/models/{{model}}/layers.tsv",
        figures=lambda wc: [path for _, path in gallery_model_figures(wc.model)],
    output:
        page=f"{GALLERY}/{{model}}/index.html",
        figures=directory(f"{GALLERY}/{{model}}/figures"),
    params:
        spec=lambda wc: config["models"][wc.model],
        layers=lambda wc: gallery_layers(wc.model),
        figures=lambda wc: gallery_model_figures(wc.model),
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "logs/gallery/{model}.log",
    script:
        "../../scripts/gallery_model.py"


def gallery_proteins():
    return bool(attention_targets())


rule gallery_proteins:
    input:
        lambda wc: attention_targets(),
    output:
        directory(f"{GALLERY}/proteins"),
    params:
        source=f"{RESULTS}/attention",
    resources:
        mem_mb=2000,
        runtime=30,
    log:
        "logs/gallery/proteins.log",
    script:
        "../../scripts/gallery_proteins.py"


rule gallery_index:
    input:
        manifests=lambda wc: [manifest_path(d) for d in config["datasets"]],
        proteins=lambda wc: [f"{GALLERY}/proteins"] if gallery_proteins() else [],
        featured=lambda wc: sorted({f"{GALLERY}/{m}/{l}" for m, l, _ in featured_units(config)}),
    output:
        page=f"{GALLERY}/index.html",
        assets=directory(f"{GALLERY}/assets"),
    params:
        models=lambda wc: {m: gallery_layers(m) for m in config["models"]},
        datasets=lambda wc: {d: {"source": spec["source"], "manifest": manifest_path(d)}
                             for d, spec in config["datasets"].items()},
        proteins=lambda wc: "proteins/index.html" if gallery_proteins() else None,
        protein_count=lambda wc: len(_attention_entries()),
        featured=lambda wc: featured_units(config),
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        "logs/gallery/index.log",
    script:
        "../../scripts/gallery_index.py"


def gallery_targets():
    if not config["gallery"]["enabled"]:
        return []
    out = [f"{GALLERY}/index.html", f"{GALLERY}/assets"]
    out += [f"{GALLERY}/proteins"] if gallery_proteins() else []
    for model in config["models"]:
        out += [f"{GALLERY}/{model}/index.html", f"{GALLERY}/{model}/figures"]
        out += [f"{GALLERY}/{model}/{layer}" for layer in gallery_layers(model)]
    return out
