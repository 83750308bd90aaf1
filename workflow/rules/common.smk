# The resolved config and the helpers every stage shares. After this file, `config` holds
# the resolved values (featvis.core.config.resolve): rules read them directly, with no
# defaults of their own.
import re
import sys
from pathlib import Path

import yaml

from featvis.core.config import ConfigError, load_yaml
from featvis.core.io import write_text


wildcard_constraints:
    model="[^/]+",
    dataset="[^/]+",
    layer="[^/]+",
    shard="[0-9]+",


RESULTS = "results"
FEATVIS_ENV = f"{workflow.basedir}/envs/featvis.yaml"  # every rule's conda environment (--use-conda)
RESOLVED_CONFIG = f"{RESULTS}/config.resolved.yaml"
MODEL_CACHE = (
    ".snakemake/featvis/models"  # traced model structures, one small JSON per model
)


def _resolved_config():
    """Resolve the config and run the start checks (main process); a cluster job reads
    the file the main process wrote, so it sees exactly the same values."""
    if not workflow.is_main_process and os.path.exists(RESOLVED_CONFIG):
        return load_yaml(RESOLVED_CONFIG)
    from featvis.start import start_checks  # the same checks `featvis check` runs

    resolved, notes = start_checks(
        config,
        load_yaml(f"{workflow.basedir}/workflow/schemas/config.schema.yaml"),
        MODEL_CACHE,
    )
    for note in notes:
        print(f"featvis: note: {note}", file=sys.stderr)
    text = yaml.safe_dump(resolved, sort_keys=False)
    written = Path(RESOLVED_CONFIG)
    if not workflow.dryrun and (
        not written.exists() or written.read_text() != text
    ):  # same bytes: leave it
        write_text(RESOLVED_CONFIG, text)
    return resolved


try:
    _RESOLVED = _resolved_config()
except ConfigError as error:  # a plain message on the console, not a traceback
    print(f"featvis: {error}", file=sys.stderr)
    raise SystemExit(1) from None
config.clear()
config.update(_RESOLVED)


def compute_params():
    """Seed, threads and device for a job; threads fixed by config, not by free cores."""
    return {
        "seed": config["seed"],
        "threads": config["threads"],
        "device": config["device"],
    }


def gpu_jobs(device=None):
    """The `gpu` resource of each job that puts tensors on the device. It is 1 when the config says cuda, so
    `--resources gpu=1` (profiles/workstation-gpu) runs one such job at a time on one card and the
    SLURM executor asks a GPU for each; 0 otherwise (`device: auto` decides only when a job starts).
    """
    return 1 if str(device or config["device"]).startswith("cuda") else 0


def dataset_images(dataset):
    """Images of an analysed dataset, counted at start (before the data stage skips any)."""
    return config["shard_plan"][dataset]["images"]


def n_shards(stage, dataset):
    """Jobs the features or patches stage splits a dataset into (featvis.vision.shards)."""
    return config["shard_plan"][dataset][stage]


def shard_images(stage, dataset):
    """Images in one shard of the stage (the last may be shorter)."""
    return -(-dataset_images(dataset) // n_shards(stage, dataset))


# Cluster resources (profiles/slurm turns them into sbatch flags; a local run uses only
# `threads`). Memory in MB and runtime in minutes, each a base plus a share per 1,000 images
# the job holds: the dataset's, or one shard's for a sharded stage (docs/cluster.md).
def per_images(base, per_1k, stage=None, dataset=None):
    """A resource of a job over `dataset` (fixed, or the job's wildcard)."""

    def value(wildcards):
        name = dataset or wildcards.dataset
        images = shard_images(stage, name) if stage else dataset_images(name)
        return int(base + per_1k * images / 1000)

    return value


def manifest_path(dataset):
    return f"{RESULTS}/data/{dataset}/manifest.csv"


def trained_weights(model):
    return f"{RESULTS}/models/{model}/weights.pt"


def model_spec(model):
    """The model's config with `weights` pointing at the pipeline's own training output, and the
    content digest of its weights file: every rule that loads the model has the spec as a param,
    so replacing the file at the same path reruns exactly that model's stages (trained weights
    are a rule input instead)."""
    spec = {k: v for k, v in config["models"][model].items() if k != "train"}
    if "train" in config["models"][model]:
        spec["weights"] = trained_weights(model)
    elif config["weights_ids"].get(model):
        spec["weights_id"] = config["weights_ids"][model]
    return spec


def model_inputs(model):
    """Files a model needs that the pipeline makes (its trained weights), for `input:`."""
    return [trained_weights(model)] if "train" in config["models"][model] else []


def analyses():
    """One resolved entry per (model, dataset): layers and each view stage's layers."""
    return config["analyses"]


def analysis(model, dataset):
    return next(
        a for a in analyses() if a["model"] == model and a["dataset"] == dataset
    )


def analysis_layers(model, dataset):
    return analysis(model, dataset)["layers"]


def analysis_pairs():
    return [(a["model"], a["dataset"]) for a in analyses()]


def view_layers(stage, model, dataset):
    """Layers a view stage runs on (chosen once, in the resolved config)."""
    return analysis(model, dataset)["views"][stage]


def stage_rule(stage, *names):
    """The name of a stage's rule for one (model, dataset) or model, e.g. features_merge__lite__photos.

    Stages whose per-layer work is short run one job per (model, dataset) that loops over the
    layers (one per pair, since outputs are fixed patterns). That is one process start and one
    model load instead of one per layer. The outputs stay one set of files per layer."""
    return re.sub(r"\W", "_", "__".join([stage, *names]))
