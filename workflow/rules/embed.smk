# Stage embed: PCA, t-SNE and UMAP maps of a layer's pooled features (one job per
# method, so UMAP's numba compile does not hold up the others), then figures.

EMBED = config["embed"]
EMBED_OPTIONS = {"tsne": ["perplexity"], "umap": ["n_neighbors", "min_dist"], "pca": []}


def embed_dir(wc):
    return f"{RESULTS}/embed/{wc.model}/{wc.dataset}/{wc.layer}"


rule embed_method:
    input:
        features=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/{EMBED['pool']}.npy",
    output:
        coords=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/{{method}}.npy",
        meta=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/{{method}}.json",
    params:
        method=lambda wc: wc.method,
        options=lambda wc: {key: EMBED[key] for key in EMBED_OPTIONS[wc.method]},
        trust_neighbors=EMBED["trust_neighbors"],
        compute=compute_params(),
    wildcard_constraints:
        method="|".join(EMBED_OPTIONS),
    threads: config["threads"]
    resources:
        mem_mb=per_images(2000, 20),
        runtime=per_images(15, 2),
    log:
        "logs/embed/{model}/{dataset}/{layer}.{method}.log",
    script:
        "../../scripts/embed_method.py"


rule embed_figures:
    input:
        coords=lambda wc: [f"{embed_dir(wc)}/{m}.npy" for m in EMBED["methods"]],
        meta=lambda wc: [f"{embed_dir(wc)}/{m}.json" for m in EMBED["methods"]],
        manifest=lambda wc: manifest_path(wc.dataset),
    output:
        table=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/coordinates.csv",
        trust=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/trustworthiness.json",
        scatter=[
            report(
                f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/scatter_{m}.png",
                caption="../report/embed_scatter.rst",
                category="Embeddings",
                labels={"model": "{model}", "layer": "{layer}", "figure": f"{m} scatter"},
            )
            for m in EMBED["methods"]
        ],
        atlas=[
            report(
                f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/atlas_{m}.png",
                caption="../report/embed_atlas.rst",
                category="Embeddings",
                labels={"model": "{model}", "layer": "{layer}", "figure": f"{m} atlas"},
            )
            for m in EMBED["methods"]
        ],
    params:
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        spec=lambda wc: model_spec(wc.model),
        methods=EMBED["methods"],
        grid=EMBED["atlas_grid"],
        cell_px=EMBED["atlas_cell_px"],
        dpi=config["figures"]["dpi"],
    resources:
        mem_mb=per_images(2000, 2),
        runtime=per_images(10, 0.5),
    log:
        "logs/embed/{model}/{dataset}/{layer}.figures.log",
    script:
        "../../scripts/embed_figures.py"


def embed_targets():
    """Every output the config asks for, so adding a method makes exactly its outputs."""
    names = ["coordinates.csv", "trustworthiness.json"]
    names += [f"{kind}{m}.{ext}" for m in EMBED["methods"]
              for kind, ext in (("", "npy"), ("", "json"), ("scatter_", "png"), ("atlas_", "png"))]
    return [
        f"{RESULTS}/embed/{model}/{dataset}/{layer}/{name}"
        for model, dataset in analysis_pairs()
        for layer in view_layers("embed", model, dataset)
        for name in names
    ]
