# Stage embed: PCA, t-SNE and UMAP maps of a layer's pooled features (one job per
# method, so UMAP's numba compile does not hold up the others), then figures.

EMBED = config.get("embed", {})


def embed_options(method):
    keys = {"tsne": ["perplexity"], "umap": ["n_neighbors", "min_dist"], "pca": []}[method]
    defaults = {"perplexity": 30, "n_neighbors": 15, "min_dist": 0.1}
    return {key: EMBED.get(key, defaults[key]) for key in keys}


rule embed_method:
    input:
        features=f"{RESULTS}/features/{{model}}/{{dataset}}/{{layer}}/{EMBED.get('pool', 'mean')}.npy",
    output:
        coords=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/{{method}}.npy",
        meta=f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/{{method}}.json",
    params:
        method=lambda wc: wc.method,
        options=lambda wc: embed_options(wc.method),
        trust_neighbors=EMBED.get("trust_neighbors", 10),
        compute=compute_params(),
    wildcard_constraints:
        method="pca|tsne|umap",
    threads: config.get("threads", 2)
    log:
        "logs/embed/{model}/{dataset}/{layer}.{method}.log",
    script:
        "../../scripts/embed_method.py"


rule embed_figures:
    input:
        coords=lambda wc: [
            f"{RESULTS}/embed/{wc.model}/{wc.dataset}/{wc.layer}/{m}.npy" for m in EMBED.get("methods", ["pca", "tsne", "umap"])
        ],
        meta=lambda wc: [
            f"{RESULTS}/embed/{wc.model}/{wc.dataset}/{wc.layer}/{m}.json" for m in EMBED.get("methods", ["pca", "tsne", "umap"])
        ],
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
            for m in EMBED.get("methods", ["pca", "tsne", "umap"])
        ],
        atlas=[
            report(
                f"{RESULTS}/embed/{{model}}/{{dataset}}/{{layer}}/atlas_{m}.png",
                caption="../report/embed_atlas.rst",
                category="Embeddings",
                labels={"model": "{model}", "layer": "{layer}", "figure": f"{m} atlas"},
            )
            for m in EMBED.get("methods", ["pca", "tsne", "umap"])
        ],
    params:
        model=lambda wc: wc.model,
        layer=lambda wc: wc.layer,
        spec=lambda wc: model_spec(wc.model),
        methods=EMBED.get("methods", ["pca", "tsne", "umap"]),
        grid=EMBED.get("atlas_grid", 24),
        cell_px=EMBED.get("atlas_cell_px", 32),
        dpi=PLOT.get("dpi", 100),
    log:
        "logs/embed/{model}/{dataset}/{layer}.figures.log",
    script:
        "../../scripts/embed_figures.py"


def embed_targets():
    return [
        f"{RESULTS}/embed/{model}/{dataset}/{layer}/coordinates.csv"
        for model, dataset in analysis_pairs()
        for layer in view_layers("embed", model, dataset)
    ]
