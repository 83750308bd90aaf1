# Helpers shared by every stage: config look-ups, checked once at start.
import json


wildcard_constraints:
    model="[^/]+",
    dataset="[^/]+",
    layer="[^/]+",
    shard="[0-9]+",


RESULTS = "results"
PLOT = config.get("figures", {})
FEATURES = config.get("features", {})


def _check_references():
    """Names in analyses and train blocks must exist: fail at start, naming the key."""
    for i, analysis in enumerate(config["analyses"]):
        for key, table in (("model", "models"), ("dataset", "datasets")):
            if analysis[key] not in config[table]:
                raise ValueError(
                    f"analyses[{i}].{key}: {analysis[key]!r} is not in {table} "
                    f"(known: {', '.join(config[table])})"
                )
    for name, spec in config["models"].items():
        train = spec.get("train")
        if train and train["dataset"] not in config["datasets"]:
            raise ValueError(f"models.{name}.train.dataset: {train['dataset']!r} is not in datasets")


_check_references()


def compute_params():
    """Seed, threads and device for a job; threads fixed by config, not by free cores."""
    return {"seed": config.get("seed", 0), "threads": config.get("threads", 2), "device": config.get("device", "auto")}


def manifest_path(dataset):
    return f"{RESULTS}/data/{dataset}/manifest.csv"


def trained_weights(model):
    return f"{RESULTS}/models/{model}/weights.pt"


def model_spec(model):
    """The model's config with `weights` pointing at the pipeline's own training output."""
    spec = {k: v for k, v in config["models"][model].items() if k != "train"}
    if "train" in config["models"][model]:
        spec["weights"] = trained_weights(model)
    return spec


def model_inputs(model):
    """Files a model needs that the pipeline makes (its trained weights), for `input:`."""
    return [trained_weights(model)] if "train" in config["models"][model] else []


def analysis_layers(model, dataset):
    layers = []
    for analysis in config["analyses"]:
        if analysis["model"] == model and analysis["dataset"] == dataset:
            layers += [l for l in analysis["layers"] if l not in layers]
    return layers


def analysis_pairs():
    return sorted({(a["model"], a["dataset"]) for a in config["analyses"]})
