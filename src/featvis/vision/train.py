"""Deterministic training of the small classifiers the pipeline makes for itself."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from featvis.vision.data import iter_batches
from featvis.vision.models import Preprocess


def load_split(manifest: pd.DataFrame, split: str, preprocess: Preprocess, class_names: list[str]):
    """All images of one split as tensors (small sets only), labels as class indices."""
    rows = manifest[manifest["split"] == split]
    paths = rows["path"].tolist()
    images = torch.cat([batch for _, batch in iter_batches(paths, preprocess, 512)])
    index = {name: i for i, name in enumerate(class_names)}
    labels = torch.tensor([index[label] for label in rows["label"]])
    return images, labels


def train_classifier(
    module: nn.Module,
    manifest: pd.DataFrame,
    preprocess: Preprocess,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> dict[str, float]:
    """Adam on the ``train`` split; returns accuracy on the ``test`` split."""
    classes = list(preprocess.class_names)
    x_train, y_train = load_split(manifest, "train", preprocess, classes)
    x_test, y_test = load_split(manifest, "test", preprocess, classes)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    module.train()
    for _epoch in tqdm(range(epochs), desc="train", unit="epoch"):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimizer.zero_grad()
            loss_fn(module(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    module.eval()
    with torch.no_grad():
        accuracy = (module(x_test).argmax(1) == y_test).float().mean().item()
    return {"test_accuracy": accuracy, "n_train": len(x_train), "n_test": len(x_test)}
