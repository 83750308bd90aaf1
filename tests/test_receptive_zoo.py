"""Traced receptive fields of the models people use equal the support of the input gradient.

Random weights, float64, 64 px (AlexNet 96 px, the smallest at which its last pooling is
still 2x2), each top-level stage or block output, three positions per layer (two corners and
the centre). An ``exact`` field must equal the gradient support; a ``local`` one (through
squeeze-excitation gates, taken as per-channel scales) must equal the support with the gates
detached, and the support without detaching must be the whole image, so the label is honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from featvis.vision.models import load_model
from featvis.vision.patches import cut_patch, describe_field
from featvis.vision.receptive import ReceptiveFields, load_fields, save_fields
from gradient_support import box_mask, corner_centre_corner, gradient_supports, one_thread, redraw_silent_parameters


@dataclass(frozen=True)
class Case:
    spec: dict
    exact: tuple[str, ...]
    local: tuple[str, ...] = ()
    first_gate: str = ""  # the gate a local field's reason names first


def torchvision(name: str, size: int = 64) -> dict:
    return {"architecture": name, "weights": "random", "image_size": size}


def timm(name: str, size: int = 64) -> dict:
    return {"architecture": f"timm:{name}", "allow_random": True, "image_size": size}


def numbered(prefix: str, indices) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in indices)


ZOO = {
    "resnet18": Case(torchvision("resnet18"), ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")),
    "vgg11": Case(torchvision("vgg11"), numbered("features.", (0, 2, 5, 10, 15, 20))),  # the convs' pools
    "alexnet": Case(torchvision("alexnet", 96), numbered("features.", (0, 2, 5, 7, 12))),
    "efficientnet_b0": Case(torchvision("efficientnet_b0"), ("features.0",), numbered("features.", range(1, 9)),
                            "squeeze-excitation gate in features.1.0.block.1"),
    "mobilenet_v3_small": Case(torchvision("mobilenet_v3_small"), ("features.0",), numbered("features.", range(1, 13)),
                               "squeeze-excitation gate in features.1.block.1"),
    "regnet_y_400mf": Case(torchvision("regnet_y_400mf"), ("stem",), numbered("trunk_output.block", range(1, 5)),
                           "squeeze-excitation gate in trunk_output.block1.block1-0.f.se"),
    "convnext_tiny": Case(torchvision("convnext_tiny"), numbered("features.", (0, 1, 3, 5, 7))),  # stem, stages
    "densenet121": Case(torchvision("densenet121"), (
        "features.pool0", *(f"features.{kind}{i}" for i in range(1, 4) for kind in ("denseblock", "transition")),
        "features.denseblock4")),
    "timm:resnet18": Case(timm("resnet18"), ("maxpool", "layer1", "layer2", "layer3", "layer4")),
    "timm:efficientnet_b0": Case(timm("efficientnet_b0"), ("conv_stem",), (*numbered("blocks.", range(7)), "conv_head"),
                                 "squeeze-excitation gate in blocks.0.0.se"),
    "timm:convnext_atto": Case(timm("convnext_atto"), ("stem", *numbered("stages.", range(4)))),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Loading, tracing and the gradient passes are small: one thread, steady on shared cores."""
    with one_thread():
        yield


def zoo_model(spec: dict):
    loaded = load_model(spec)
    module = loaded.module.double()
    redraw_silent_parameters(module)
    return module, loaded.preprocess.input_shape()


@pytest.mark.parametrize("name", list(ZOO))
def test_fields_equal_the_gradient_support(name):
    case = ZOO[name]
    module, shape = zoo_model(case.spec)
    layers = [*case.exact, *case.local]
    traced = ReceptiveFields(module, shape, layers)
    assert {layer: traced.kind(layer) for layer in layers} == {
        **dict.fromkeys(case.exact, "exact"), **dict.fromkeys(case.local, "local")}
    for layer in case.local:
        assert traced.reason(layer).startswith(case.first_gate), traced.reason(layer)
    probes = {layer: [(layer, y, x) for y, x in corner_centre_corner(traced.grid_size(layer))] for layer in layers}
    exact = [p for layer in case.exact for p in probes[layer]]
    live = [(layer, *[s // 2 for s in traced.grid_size(layer)]) for layer in case.local]  # gates not detached
    supports = gradient_supports(module, shape, exact + live)
    for probe, support in zip(exact, supports):
        assert torch.equal(support, box_mask(traced.box(*probe), shape[-2:])), (probe, traced.box(*probe))
    for probe, support in zip(live, supports[len(exact):]):
        assert support.all(), probe  # through its gates a local field's position sees every pixel
    frozen = [p for layer in case.local for p in probes[layer]]
    for probe, support in zip(frozen, gradient_supports(module, shape, frozen, frozen=True) if frozen else []):
        assert torch.equal(support, box_mask(traced.box(*probe), shape[-2:])), (probe, traced.box(*probe))


def test_vit_token_fields_follow_the_gradient_support():
    """Up to the first attention a token's field is its own patch (exact); after it the token sees
    the whole image (``token``), and patches are still cut at its own patch."""
    module, shape = zoo_model(timm("vit_tiny_patch16_224"))
    layers = ["patch_embed", "blocks.0", "blocks.5", "blocks.11"]
    traced = ReceptiveFields(module, shape, layers)
    assert [traced.kind(layer) for layer in layers] == ["exact", "token", "token", "token"]
    probes = [(layer, y, x) for layer in layers for y, x in corner_centre_corner(traced.grid_size(layer))]
    for (layer, y, x), support in zip(probes, gradient_supports(module, shape, probes)):
        patch = box_mask(traced.layer_field(layer).box(y, x), shape[-2:])
        assert patch.sum() == 16 * 16
        assert torch.equal(support, patch if layer == "patch_embed" else torch.ones_like(support)), (layer, y, x)


def test_efficientnet_patches_after_squeeze_excitation_are_local_fields(tmp_path):
    """Acceptance (issue 19): torchvision EfficientNet-B0's patches after its first SE block are cut at
    a labelled local field, not the whole image, and the label survives the fields cache."""
    module, shape = zoo_model(torchvision("efficientnet_b0"))
    traced = ReceptiveFields(module, shape, ["features.2"])
    save_fields(tmp_path / "fields.npz", shape, {"features.2": traced.layer_field("features.2")})
    field = load_fields(tmp_path / "fields.npz")[1]["features.2"]
    assert field.kind == "local" and field.reason == traced.reason("features.2")
    assert "squeeze-excitation gate in features.1.0.block.1" in field.reason
    centre = tuple(s // 2 for s in field.boxes.shape[:2])
    y0, y1, x0, x1 = field.box(*centre)
    assert (y1 - y0, x1 - x0) == field.size == (19, 19)  # the convolutions' field, inside the 64 px image
    image = np.arange(64 * 64, dtype=np.int32).reshape(64, 64)
    np.testing.assert_array_equal(cut_patch(image, field, *centre), image[y0:y1, x0:x1])
    words = describe_field(field)
    assert words.startswith("local receptive field 19x19 px") and field.reason in words
