# Stage concepts: a dictionary per layer (NMF, TopK SAE) learned from a seeded, bounded sample of the
# layer's positions (one streamed pass), then the codes streamed over the dataset in the patches
# stage's shards (top-K per concept and code statistics, merged exactly), then per concept its
# pictures under results/units/<model>/<layer>/concepts/<method>/ and a quality JSON per layer
# (docs/concepts.md). The plan (layers, concepts per layer) is made at start: concepts.plan.

CONCEPTS = config["concepts"]


include: "functions/concepts.smk"


for _model, _dataset in concept_pairs():
    _entries = concept_entries(_model, _dataset)

    rule:
        name:
            stage_rule("concepts_fit", _model, _dataset)
        input:
            manifest=manifest_path(_dataset),
            weights=model_inputs(_model),
            minima=[
                f"{RESULTS}/features/{_model}/{_dataset}/{e['layer']}/min.npy"
                for e in _entries
            ],
        output:
            dictionary=concept_fits(_model, _dataset, "dictionary.npz"),
            fit=concept_fits(_model, _dataset, "fit.json"),
        log:
            f"logs/concepts/{_model}/{_dataset}/fit.log",
        conda:
            FEATVIS_ENV
        threads: config["threads"]
        resources:
            gpu=gpu_jobs(),
            mem_mb=per_images(3000, 1, dataset=_dataset),
            runtime=per_images(20, 5, dataset=_dataset),
        params:
            spec=model_spec(_model),
            model=_model,
            entries=_entries,
            settings=concept_settings(),
            workers=config["features"]["workers"],
            compute=compute_params(),
        script:
            "../../scripts/concepts_fit.py"


rule concepts_encode:
    input:
        manifest=lambda wc: manifest_path(wc.dataset),
        weights=lambda wc: model_inputs(wc.model),
        dictionaries=lambda wc: concept_fits(wc.model, wc.dataset, "dictionary.npz"),
    output:
        directory(f"{RESULTS}/concepts/{{model}}/{{dataset}}/shards/{{shard}}"),
    log:
        "logs/concepts/{model}/{dataset}/encode.shard{shard}.log",
    conda:
        FEATVIS_ENV
    threads: config["threads"]
    resources:
        gpu=gpu_jobs(),
        mem_mb=per_images(3000, 2, "patches"),
        runtime=per_images(10, 5, "patches"),
    params:
        spec=lambda wc: model_spec(wc.model),
        model=lambda wc: wc.model,
        layers=lambda wc: [e["layer"] for e in concept_entries(wc.model, wc.dataset)],
        pairs=lambda wc: [
            (e["layer"], m)
            for e in concept_entries(wc.model, wc.dataset)
            for m in CONCEPTS["methods"]
        ],
        top_k=CONCEPTS["top_k"],
        batch_size=CONCEPTS["encode_batch_size"],
        workers=config["features"]["workers"],
        shard=lambda wc: int(wc.shard),
        n_shards=lambda wc: n_shards("patches", wc.dataset),
        compute=compute_params(),
    script:
        "../../scripts/concepts_encode.py"


for _model, _dataset in concept_pairs():
    _entries = concept_entries(_model, _dataset)
    _base = concept_base(_model, _dataset)

    rule:
        name:
            stage_rule("concepts_pages", _model, _dataset)
        input:
            shards=[f"{_base}/shards/{i}" for i in range(n_shards("patches", _dataset))],
            dictionaries=concept_fits(_model, _dataset, "dictionary.npz"),
            fits=concept_fits(_model, _dataset, "fit.json"),
            manifest=manifest_path(_dataset),
            fields=fields_path(_model),
            weights=model_inputs(_model),
        output:
            quality=[f"{_base}/{e['layer']}/quality.json" for e in _entries],
            units=[
                directory(f"{RESULTS}/units/{_model}/{e['layer']}/concepts/{method}")
                for e in _entries
                for method in CONCEPTS["methods"]
            ],
        log:
            f"logs/concepts/{_model}/{_dataset}/pages.log",
        conda:
            FEATVIS_ENV
        threads: config["threads"]
        resources:
            gpu=gpu_jobs(),
            mem_mb=per_images(3000, 2, dataset=_dataset),
            runtime=60,
        params:
            spec=model_spec(_model),
            model=_model,
            dataset=_dataset,
            entries=_entries,
            settings=concept_settings(),
            compute=compute_params(),
        script:
            "../../scripts/concepts_pages.py"
