"""Feature accentuation and transparency maps on the hand-built grating network (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from featvis.render import objectives as obj
from featvis.render.accentuate import AccentSettings, Target, accentuate, unit_activations
from featvis.render.optimize import RenderSettings, render
from featvis.render.params import make_param

SIZE = 40  # the grating net's 21 px kernel leaves a 20 x 20 grid


def _seed_images(count: int = 2) -> np.ndarray:
    """Smooth, natural-looking seeds (blurred noise), away from 0 and 1 where the sigmoid saturates."""
    rng = np.random.default_rng(3)
    noise = torch.tensor(rng.normal(size=(count, 3, SIZE, SIZE)), dtype=torch.float32)
    smooth = torch.nn.functional.avg_pool2d(noise, 5, stride=1, padding=2)
    return (0.5 + 0.15 * smooth / smooth.std()).clamp(0.05, 0.95).permute(0, 2, 3, 1).numpy()


TARGETS = [Target(0, 10, 10, 0), Target(0, 10, 10, 1)]
PLAIN = AccentSettings(steps=24, lr=0.05, transforms="none", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("param", ["fourier", "pixel", "laplacian"])
def test_inverse_parametrization_reproduces_the_seed(param):
    seeds = _seed_images()
    p = make_param(param, [0, 1], SIZE, colour="imagenet")
    p.load_images(torch.as_tensor(seeds).permute(0, 3, 1, 2))
    with torch.no_grad():
        back = p().permute(0, 2, 3, 1).numpy()
    assert np.abs(back - seeds).max() < 1e-4


def test_zero_steps_returns_the_seed_exactly(grating_net):
    seeds = _seed_images()
    out = accentuate(grating_net, "conv", TARGETS, seeds, PLAIN.__class__(**{**PLAIN.__dict__, "steps": 0}))
    assert np.array_equal(out.images, seeds)
    assert np.array_equal(out.after, out.before)
    assert not out.distance.any()


def test_accentuation_raises_the_unit_and_the_pull_bounds_the_distance(grating_net):
    seeds = _seed_images()
    free = accentuate(grating_net, "conv", TARGETS, seeds, PLAIN.__class__(**{**PLAIN.__dict__, "pull": 0.0}))
    pulled = accentuate(grating_net, "conv", TARGETS, seeds, PLAIN.__class__(**{**PLAIN.__dict__, "pull": 50.0}))
    before = unit_activations(grating_net, "conv", TARGETS, seeds, PLAIN)
    assert np.allclose(free.before, before)
    for out in (free, pulled):
        assert (out.after > out.before).all()
    # the pull holds the image nearer the seed than no pull does
    assert (pulled.distance < free.distance).all()
    # the loss went down: pull * d^2 <= (after - before) / scale (scale: the unit's largest seed activation)
    scale = np.abs(pulled.before).max()
    assert (50.0 * pulled.distance**2 <= (pulled.after - pulled.before) / scale * 1.05).all()


def test_accentuation_rejects_a_parametrization_it_cannot_invert(grating_net):
    with pytest.raises(ValueError, match="invertible"):
        accentuate(grating_net, "conv", TARGETS, _seed_images(), PLAIN.__class__(**{**PLAIN.__dict__,
                                                                                      "param": "maco"}))


def test_transparency_lies_only_where_the_unit_looks(grating_net):
    """The unit at grid position (y, x) reads the 21 x 21 input box from (y, x): all |gradient| mass
    is inside it, and every pixel of the box gets some."""
    settings = RenderSettings(size=SIZE, steps=3, transforms="none", param="fourier", mean=(0.0,) * 3,
                              std=(1.0,) * 3, fold_batchnorm=False)
    result = render(grating_net, obj.neuron("conv", [0, 1], x=4, y=12), seeds=[0, 1], settings=settings)
    maps = result.transparency
    assert maps.shape == (2, SIZE, SIZE)
    box = np.zeros((SIZE, SIZE), dtype=bool)
    box[12:33, 4:25] = True
    for m in maps:
        assert m[~box].max() == 0.0
        assert (m[box] > 0).mean() > 0.99


def test_accentuation_fits_the_patches_table_and_square_rgb_models_with_a_note():
    from featvis.render.checks import accentuate_plan

    config = {"render": {"jobs": {"a": {"model": "rgba"}, "b": {"model": "lite"}},
                         "accentuate": {"enabled": True, "patches": 5}}, "patches": {"k": 4}}
    structures = {"lite": {"input": [3, 160, 160]}, "rgba": {"input": [4, 32, 48]}, "other": {"input": [1, 28, 28]}}
    notes = accentuate_plan(config, structures)
    assert config["render"]["accentuate"]["patches"] == 4 and config["render"]["accentuate"]["models"] == ["lite"]
    assert "keeps 4 (patches.k): accentuating 4" in notes[0]
    assert notes[1] == ("no feature accentuation for rgba: its input is 4x32x48 (channels x height x width); "
                        "accentuation needs a square RGB input")
    assert len(notes) == 2  # `other` renders nothing: no note
    config["render"]["accentuate"]["enabled"] = False
    assert accentuate_plan(config, structures) == []


def test_top_targets_take_the_best_images_of_each_unit_in_order():
    from featvis.render.accentuate import top_targets

    topk = {"image": np.array([[7, 3, 5, 1], [2, -1, -1, -1]]), "y": np.array([[0, 1, 2, 3], [4, 0, 0, 0]]),
            "x": np.array([[5, 6, 7, 8], [9, 0, 0, 0]]), "value": np.ones((2, 4))}
    targets, rows = top_targets(topk, [0, 1], 3)
    assert rows == [7, 3, 5, 2]  # unit 1 has one image only (a dataset smaller than K)
    assert targets[1] == Target(0, 1, 6, 1) and targets[3] == Target(1, 4, 9, 0)


def test_a_unit_without_positions_is_accentuated_as_a_whole():
    """A (N, C) layer (a classifier, a transformer's class token): the unit is the channel itself."""
    from collections import OrderedDict

    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict(conv=nn.Conv2d(3, 4, 3), relu=nn.ReLU(), pool=nn.AdaptiveAvgPool2d(1),
                                    flat=nn.Flatten(), fc=nn.Linear(4, 2))).eval()
    photos = np.random.default_rng(0).uniform(0.2, 0.8, (2, 32, 32, 3)).astype(np.float32)
    out = accentuate(net, "fc", [Target(channel=1, y=0, x=0), Target(channel=0, y=0, x=0)], photos,
                     AccentSettings(steps=8, lr=0.1, pull=0.0))
    with torch.no_grad():
        mean, std = (torch.tensor(v).reshape(1, 3, 1, 1) for v in (AccentSettings.mean, AccentSettings.std))
        logits = net((torch.as_tensor(photos).permute(0, 3, 1, 2) - mean) / std)
    np.testing.assert_allclose(out.before, [logits[0, 1], logits[1, 0]], rtol=1e-5, atol=1e-6)
    assert (out.after > out.before).all()
