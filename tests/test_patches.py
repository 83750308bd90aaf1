"""Patches at the exact receptive field, clipped at the border; global layers; figures."""

from __future__ import annotations

import numpy as np
import torch

from featvis.core.figures import save_figure
from featvis.vision.mining import mine_topk
from featvis.vision.patches import OUTSIDE, cut_patch, describe_field, layer_grid, topk_patches
from featvis.vision.receptive import receptive_fields


def conv_field(kernel: int, stride: int, padding: int, size: int):
    """The traced field of a single real convolution on a size x size image."""
    conv = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
    return receptive_fields(torch.nn.Sequential(conv), (1, 1, size, size), ["0"])["0"]


FIELD = conv_field(3, 2, 1, 8)  # 3x3 field, stride 2, padding 1


def test_patch_is_clipped_and_placed():
    image = np.arange(64, dtype=np.uint8).reshape(8, 8)
    corner = cut_patch(image, FIELD, 0, 0)
    assert corner.shape == (3, 3)
    assert (corner[0] == OUTSIDE).all() and (corner[:, 0] == OUTSIDE).all()
    np.testing.assert_array_equal(corner[1:, 1:], image[0:2, 0:2])
    np.testing.assert_array_equal(cut_patch(image, FIELD, 2, 1), image[3:6, 1:4])


def test_field_larger_than_image_shows_the_image():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4)
    big = conv_field(11, 4, 5, 4)
    np.testing.assert_array_equal(cut_patch(image, big, 0, 0), image)


def test_linear_layer_patches_are_whole_images(tiny_images, mnist_model):
    paths = tiny_images["path"].tolist()
    field = receptive_fields(mnist_model.module, (1, 1, 28, 28), ["fc"])["fc"]
    assert field is None
    assert "whole images" in describe_field(field)
    topk = mine_topk(mnist_model, paths, ["fc"], 2, torch.device("cpu"), progress=False)["fc"]
    assert (topk["y"] == 0).all() and (topk["x"] == 0).all()
    from featvis.vision.data import display_image

    patches = topk_patches(topk, field, paths, 28, 1, [0, 3])
    np.testing.assert_array_equal(patches[1][0], display_image(paths[topk["image"][3, 0]], 28, 1))


def png_bytes(fig) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.png"
        save_figure(fig, path)
        return path.read_bytes()


def test_figures_are_byte_identical(tiny_images, mnist_model):
    from featvis.vision.attribution import overlay
    from featvis.vision.embed import atlas, scatter
    from featvis.vision.neighbors import nearest, neighbor_grid

    paths = tiny_images["path"].tolist()
    topk = mine_topk(mnist_model, paths, ["conv2"], 3, torch.device("cpu"), progress=False)["conv2"]
    field = receptive_fields(mnist_model.module, (1, 1, 28, 28), ["conv2"])["conv2"]
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(24, 2))
    images = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(24)]
    labels = tiny_images["label"].tolist()
    idx, dist = nearest(rng.normal(size=(24, 4)), [0, 5], 3)
    makers = [
        lambda: layer_grid(topk_patches(topk, field, paths, 28, 1, [0, 1]), [0, 1], "grid"),
        lambda: scatter(coords, labels, "scatter"),
        lambda: atlas(coords, lambda i: images[i], 4, 8, "atlas"),
        lambda: neighbor_grid(images, [0, 5], idx, dist, labels, "neighbours"),
        lambda: layer_grid([[overlay(images[0], np.eye(4))]], [0], "overlay"),
    ]
    for make in makers:
        assert png_bytes(make()) == png_bytes(make())
