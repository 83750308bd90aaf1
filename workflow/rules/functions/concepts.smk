# Helper functions of concepts.smk (kept apart from its rules: snakemake --lint).


def concept_entries(model, dataset):
    return [
        e for e in CONCEPTS["plan"] if e["model"] == model and e["dataset"] == dataset
    ]


def concept_pairs():
    return list(dict.fromkeys((e["model"], e["dataset"]) for e in CONCEPTS["plan"]))


def concept_base(model, dataset):
    return f"{RESULTS}/concepts/{model}/{dataset}"


def concept_fits(model, dataset, name):
    """A (model, dataset)'s fitted files, one per (layer, method), in plan order."""
    return [
        f"{concept_base(model, dataset)}/{e['layer']}/{method}/{name}"
        for e in concept_entries(model, dataset)
        for method in CONCEPTS["methods"]
    ]


def concept_settings():
    return {
        key: value for key, value in CONCEPTS.items() if key not in ("plan", "layers")
    }


def concept_units(model, layer):
    """The unit folders of a layer's concepts (one per method), empty when the layer has none."""
    return [
        f"{RESULTS}/units/{model}/{layer}/concepts/{method}"
        for e in CONCEPTS["plan"]
        if e["model"] == model and e["layer"] == layer
        for method in CONCEPTS["methods"]
    ]


def concept_quality(model, layer):
    return [
        f"{concept_base(model, e['dataset'])}/{layer}/quality.json"
        for e in CONCEPTS["plan"]
        if e["model"] == model and e["layer"] == layer
    ]


def concepts_targets():
    return [
        path
        for e in CONCEPTS["plan"]
        for path in concept_quality(e["model"], e["layer"])
        + concept_units(e["model"], e["layer"])
    ]
