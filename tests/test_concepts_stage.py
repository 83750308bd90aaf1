"""The concepts stage's bad input and dead concepts: fewer positions than concepts stops at start;
nmf on a layer with negative activations is refused when its fit job starts (first run) and at start
(once the features stage has seen the layer), unless relu or shift; a concept that never fires is
counted dead and gets no files and no page."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from featvis.concepts.methods import Dictionary, fit
from featvis.concepts.outputs import quality_record, write_concepts
from featvis.concepts.quality import matched_cosine
from featvis.concepts.stream import Encoder, layer_batches
from featvis.core.io import write_json
from featvis.gallery.concepts import build_concepts
from workflow_helpers import TINY_CONFIG, checkout, snakemake, write_config


def concept_config(**concepts):
    config = copy.deepcopy(TINY_CONFIG)
    config["analyses"] = [{"model": "efficientnet_lite0", "dataset": "photos", "layers": ["_blocks.1"]}]
    config["concepts"] = {"layers": {"efficientnet_lite0": ["_blocks.1"]}, "steps": 5, "render_steps": 0,
                          "positions_per_image": 2, **concepts}
    for key in ("neighbors", "embed", "attribution", "render", "attention"):
        config.pop(key, None)
    config["models"].pop("mnist_cnn")
    config["datasets"].pop("mnist5k")
    return config


@pytest.mark.integration
def test_bad_concept_settings_stop_at_start_or_when_the_fit_starts(tmp_path):
    """One checkout (its model structure traced once) for both checks."""
    root = checkout(tmp_path / "featvis")
    result = snakemake(root, write_config(root / "few.yaml", concept_config(n_concepts=100)), "-n")
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "concepts (efficientnet_lite0 _blocks.1): the fit sees 72 positions (36 images x 2 positions each" in out
    assert "for 100 concepts" in out and "lower concepts.n_concepts" in out and "Traceback" not in out
    # nmf on a layer with negative activations (a linear bottleneck), neither relu nor shift
    config = write_config(root / "c.yaml", concept_config(n_concepts=4, methods=["nmf"]))
    target = "results/concepts/efficientnet_lite0/photos/_blocks.1/nmf/fit.json"
    first = snakemake(root, config, target)  # the fit job checks the features stage's minima first
    assert first.returncode != 0 and "nmf needs non-negative activations" in first.stdout + first.stderr
    assert not (root / target).exists()
    again = snakemake(root, config, "-n", target)  # now the minima exist: refused when the workflow starts
    assert again.returncode != 0 and "set concepts.relu: true" in again.stdout + again.stderr
    fixed = write_config(root / "fixed.yaml", concept_config(n_concepts=4, methods=["nmf"], shift="min"))
    assert snakemake(root, fixed, "-n", target).returncode == 0


def test_a_concept_that_never_fires_is_dead_with_no_files_and_no_page(tmp_path, mnist_model, tiny_images):
    paths = tiny_images["path"].tolist()
    batches = list(layer_batches(mnist_model, paths, ["conv3"], torch.device("cpu"), batch_size=10))
    x = torch.cat([a["conv3"].permute(0, 2, 3, 1).reshape(-1, 64) for _, a in batches])
    dictionary = fit("topk_sae", x, 3, {"k": 1, "steps": 20}, seed=0)
    dictionary.encoder["bias"][1] = -1e9  # concept 1 can never win a place among the active ones
    stats_encoder = Encoder(dictionary, 4)
    for start, acts in batches:
        stats_encoder.add(start, acts["conv3"])
    top, stats = stats_encoder.result()
    other = fit("topk_sae", x, 3, {"k": 1, "steps": 20}, seed=1)
    mean, per, _ = matched_cosine(dictionary.atoms, other.atoms)
    record = quality_record("topk_sae", {"stability": mean, "stability_per_concept": per.tolist(),
                                         "sample": {}}, stats)
    assert record["dead"] == [1] and record["dead_fraction"] == pytest.approx(1 / 3)
    folder = tmp_path / "results/units/mnist_cnn/conv3/concepts/topk_sae"
    labels = tiny_images["label"].tolist()
    written = write_concepts(folder, record, dictionary, top, None, paths, labels, ["0", "1", "2"],
                             stats.class_presence(), (28, 28), 1, ("bilinear", 1.0), {}, {}, 4)
    assert written == 2 and sorted(p.name for p in folder.glob("*.jpg")) == ["0000.patches.jpg", "0002.patches.jpg"]
    quality = tmp_path / "quality.json"
    write_json(quality, {"methods": {"topk_sae": {**record, "sample": {"positions_fitted": 1, "positions_per_image": 1,
                                                                        "images": 1, "grid": [7, 7], "budget": 1}}}})
    pages = build_concepts(tmp_path / "gallery", tmp_path / "results", "mnist_cnn", "conv3", quality)
    site = tmp_path / "gallery/concepts/topk_sae"
    assert pages == 2 and (site / "0.html").exists() and not (site / "1.html").exists()
    assert "1 dead concept(s)" in (site / "index.html").read_text()
    assert isinstance(dictionary, Dictionary) and np.isfinite(record["r2"])


def test_a_transformer_token_layer_is_refused_at_start_naming_the_class_token():
    from featvis.concepts.checks import check_concepts
    from featvis.core.config import ConfigError

    config = {"seed": 0, "analyses": [{"model": "vit", "dataset": "photos", "layers": ["blocks.6"]}],
              "concepts": {"layers": {"vit": ["blocks.6"]}, "seed": None, "n_concepts": 4, "expansion": 1.0,
                           "positions_per_image": 2, "max_positions": 1000, "methods": ["topk_sae"]},
              "shard_plan": {"photos": {"images": 50}}}
    with pytest.raises(ConfigError, match=r"blocks\.6 is a transformer token layer.*blocks\.6@cls"):
        check_concepts(config, {"vit": {"blocks.6": (192, 7, 7)}}, token_layers={"vit": ["blocks.6"]})
    check_concepts(config, {"vit": {"blocks.6": (192, 7, 7)}}, token_layers={"vit": []})  # a map: accepted
    assert config["concepts"]["plan"][0]["grid"] == 49
