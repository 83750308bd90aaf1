# Stage embed: PCA, t-SNE and UMAP maps of each layer's pooled features, then figures. One job per
# (model, dataset, method) for all the layers (so UMAP's numba compile does not hold up the other
# methods, and adding a method makes only its maps), one figures job per (model, dataset).

EMBED = config["embed"]
EMBED_OPTIONS = {
    "tsne": ["perplexity", "fit_max"],
    "umap": ["n_neighbors", "min_dist"],
    "pca": [],
}
# UMAP with a random_state fits on one thread: its job claims one core, so the scheduler runs
# another job beside it. Its compute threads (params), and so its numbers, are unchanged.
ONE_CORE_METHODS = {"umap"}


def embed_cores(wildcards):
    return 1 if wildcards.method in ONE_CORE_METHODS else config["threads"]


for _model, _dataset in analysis_pairs():
    _layers = view_layers("embed", _model, _dataset)
    _base = f"{RESULTS}/embed/{_model}/{_dataset}"
    if not _layers:
        continue

    rule:
        name:
            stage_rule("embed_method", _model, _dataset)
        input:
            features=[
                f"{RESULTS}/features/{_model}/{_dataset}/{layer}/{EMBED['pool']}.npy"
                for layer in _layers
            ],
        output:
            coords=[f"{_base}/{layer}/{{method}}.npy" for layer in _layers],
            meta=[f"{_base}/{layer}/{{method}}.json" for layer in _layers],
        log:
            f"logs/embed/{_model}/{_dataset}/{{method}}.log",
        wildcard_constraints:
            method="|".join(EMBED_OPTIONS),
        conda:
            FEATVIS_ENV
        threads: embed_cores
        resources:
            mem_mb=per_images(2000, 20, dataset=_dataset),
            runtime=per_images(15, 2, dataset=_dataset),
        params:
            layers=_layers,
            method=lambda wc: wc.method,
            options=lambda wc: {key: EMBED[key] for key in EMBED_OPTIONS[wc.method]},
            trust_neighbors=EMBED["trust_neighbors"],
            compute=compute_params(),
        script:
            "../../scripts/embed_method.py"

    rule:
        name:
            stage_rule("embed_figures", _model, _dataset)
        input:
            coords=[
                f"{_base}/{layer}/{m}.npy"
                for layer in _layers
                for m in EMBED["methods"]
            ],
            meta=[
                f"{_base}/{layer}/{m}.json"
                for layer in _layers
                for m in EMBED["methods"]
            ],
            manifest=manifest_path(_dataset),
        output:
            table=[f"{_base}/{layer}/coordinates.csv" for layer in _layers],
            trust=[f"{_base}/{layer}/trustworthiness.json" for layer in _layers],
            scatter=[
                report(
                    f"{_base}/{layer}/scatter_{m}.png",
                    caption="../report/embed_scatter.rst",
                    category="Embeddings",
                    labels={"model": _model, "layer": layer, "figure": f"{m} scatter"},
                )
                for layer in _layers
                for m in EMBED["methods"]
            ],
            atlas=[
                report(
                    f"{_base}/{layer}/atlas_{m}.png",
                    caption="../report/embed_atlas.rst",
                    category="Embeddings",
                    labels={"model": _model, "layer": layer, "figure": f"{m} atlas"},
                )
                for layer in _layers
                for m in EMBED["methods"]
            ],
        log:
            f"logs/embed/{_model}/{_dataset}/figures.log",
        conda:
            FEATVIS_ENV
        resources:
            mem_mb=per_images(2000, 2, dataset=_dataset),
            runtime=per_images(10, 0.5, dataset=_dataset),
        params:
            model=_model,
            layers=_layers,
            spec=model_spec(_model),
            methods=EMBED["methods"],
            grid=EMBED["atlas_grid"],
            cell_px=EMBED["atlas_cell_px"],
            dpi=config["figures"]["dpi"],
        script:
            "../../scripts/embed_figures.py"


def embed_targets():
    """Every output the config asks for, so adding a method makes exactly its outputs."""
    names = ["coordinates.csv", "trustworthiness.json"]
    names += [
        f"{kind}{m}.{ext}"
        for m in EMBED["methods"]
        for kind, ext in (
            ("", "npy"),
            ("", "json"),
            ("scatter_", "png"),
            ("atlas_", "png"),
        )
    ]
    return [
        f"{RESULTS}/embed/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in view_layers("embed", model, dataset)
        for name in names
    ]
