# Stage gallery: a static, offline, Microscope-like site (results/gallery/index.html) built from
# whatever the other stages made. One job per model for its layer and unit pages (one process start,
# not one per layer), one per model page, one for the index and assets, one copying the protein
# reports. The gallery reads files: unit pictures from results/units/<model>/<layer>/, layer
# figures by their place in results/<stage>/<model>/..., and each dataset's per-image maxima.

GALLERY = f"{RESULTS}/gallery"


from featvis.gallery.checks import featured_units, gallery_layers as _gallery_layers


include: "functions/gallery.smk"


# Layer and unit pages: one job per model for all its layers.
for _model in config["models"]:
    _pages = {
        layer: gallery_layer_inputs(_model, layer) for layer in gallery_layers(_model)
    }
    if not _pages:
        continue

    rule:
        name:
            stage_rule("gallery_layer", _model)
        input:
            units=[path for page in _pages.values() for path in page["units"]],
            figures=[path for page in _pages.values() for path in page["figures"]],
            maxima=[
                path for page in _pages.values() for path in page["maxima"].values()
            ],
            maps=[path for page in _pages.values() for path in page["maps"].values()],
            concepts=[
                path
                for page in _pages.values()
                for path in page["concepts"] + page["concept_units"]
            ],
        output:
            [directory(f"{GALLERY}/{_model}/{layer}") for layer in _pages],
        log:
            f"logs/gallery/{_model}/layers.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            model=_model,
            pages=_pages,
        script:
            "../../scripts/gallery_layer.py"


rule gallery_model:
    input:
        table=f"{RESULTS}/models/{{model}}/layers.tsv",
        figures=lambda wc: [path for _, path in gallery_model_figures(wc.model)],
    output:
        page=f"{GALLERY}/{{model}}/index.html",
        figures=directory(f"{GALLERY}/{{model}}/figures"),
    log:
        "logs/gallery/{model}.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        spec=lambda wc: config["models"][wc.model],
        layers=lambda wc: gallery_layers(wc.model),
        figures=lambda wc: gallery_model_figures(wc.model),
    script:
        "../../scripts/gallery_model.py"


rule gallery_proteins:
    input:
        lambda wc: attention_targets(),
    output:
        directory(f"{GALLERY}/proteins"),
    log:
        "logs/gallery/proteins.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        source=f"{RESULTS}/attention",
    script:
        "../../scripts/gallery_proteins.py"


rule gallery_index:
    input:
        manifests=lambda wc: [manifest_path(d) for d in config["datasets"]],
        proteins=lambda wc: [f"{GALLERY}/proteins"] if gallery_proteins() else [],
        featured=lambda wc: sorted(
            {f"{GALLERY}/{m}/{l}" for m, l, _ in featured_units(config)}
        ),
    output:
        page=f"{GALLERY}/index.html",
        assets=directory(f"{GALLERY}/assets"),
    log:
        "logs/gallery/index.log",
    conda:
        FEATVIS_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=lambda wc: {m: gallery_layers(m) for m in config["models"]},
        datasets=lambda wc: {
            d: {"source": spec["source"], "manifest": manifest_path(d)}
            for d, spec in config["datasets"].items()
        },
        proteins=lambda wc: "proteins/index.html" if gallery_proteins() else None,
        protein_count=lambda wc: len(_attention_entries()),
        featured=lambda wc: featured_units(config),
    script:
        "../../scripts/gallery_index.py"
