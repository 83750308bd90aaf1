import math

import numpy as np
import pytest
import torch
from torch import nn

from featvis.core.hooks import UnknownLayerError
from featvis.render import RenderSettings, render
from featvis.render import objectives as obj
from featvis.render.fuse import prepare_model
from featvis.render.transforms import ImageTooSmallError

PLAIN = RenderSettings(size=64, steps=48, transforms="none", mean=(0, 0, 0), std=(1, 1, 1))


def dominant_frequency(image: np.ndarray, min_radius: float = 0.0) -> tuple[float, float]:
    """(cycles per pixel, orientation in degrees mod 180) of the luminance spectrum.

    The power centroid within 3 bins of the power peak, so the answer is not stuck to the
    1/size bin grid (the mirrored peak of a real image is outside that disc).
    """
    grey = image.mean(-1) - image.mean()
    power = np.abs(np.fft.fft2(grey)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(grey.shape[0]), np.fft.fftfreq(grey.shape[1]), indexing="ij")
    power[np.hypot(fx, fy) < max(min_radius, 1e-9)] = 0
    ky, kx = np.unravel_index(power.argmax(), power.shape)
    weight = power * (np.hypot(fx - fx[ky, kx], fy - fy[ky, kx]) <= 3 / grey.shape[0])
    cx, cy = (weight * fx).sum() / weight.sum(), (weight * fy).sum() / weight.sum()
    return float(np.hypot(cx, cy)), math.degrees(math.atan2(cy, cx)) % 180


def angle_gap(a: float, b: float) -> float:
    return min(abs(a - b) % 180, 180 - abs(a - b) % 180)


@pytest.mark.parametrize("param, min_radius", [("pixel", 0.0), ("fourier", 3 / 64)])
def test_grating_channel_renders_its_own_frequency_and_orientation(grating_net, param, min_radius):
    # channel 0 is a 0.125 cycles/px grating at 30 degrees, channel 1 the same turned by 90.
    # The 1/f parametrization starts with most power in the lowest frequencies, which a
    # zero-mean filter cannot see; for it the grating must dominate the band it can see.
    result = render(grating_net, obj.channel("relu", [0, 1]), [0, 1], PLAIN.replace(param=param))
    for image, angle in zip(result.images, (30.0, 120.0), strict=True):
        frequency, orientation = dominant_frequency(image, min_radius)
        assert frequency == pytest.approx(0.125, rel=0.12)
        assert angle_gap(orientation, angle) < 8


def test_render_raises_the_objective_far_above_noise(effnet):
    objective = obj.channel("_blocks.6", [0, 5, 17])
    settings = RenderSettings(size=64, steps=24)
    result = render(effnet, objective, [0, 1, 2], settings)
    noise = torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    from featvis.core.hooks import capture, run_to_layers

    net = prepare_model(effnet, keep=objective.layers)
    mean = torch.tensor(settings.mean).reshape(1, 3, 1, 1)
    std = torch.tensor(settings.std).reshape(1, 3, 1, 1)
    with torch.no_grad(), capture(net, ["_blocks.6"]) as acts:
        run_to_layers(net, (noise - mean) / std, acts)
        noise_acts = acts["_blocks.6"][:, [0, 5, 17]].mean((2, 3))  # (16, 3)
    spread = noise_acts.std(0).numpy()
    top = noise_acts.max(0).values.numpy()
    assert (result.final > top + 10 * spread).all()
    assert (result.trace[-1] > result.trace[0]).all()


def test_same_seed_same_render_and_other_seed_differs(grating_net):
    settings = PLAIN.replace(steps=8, transforms="standard")
    a = render(grating_net, obj.channel("relu", [0, 1]), [3, 4], settings)
    b = render(grating_net, obj.channel("relu", [0, 1]), [3, 4], settings)
    c = render(grating_net, obj.channel("relu", [0, 1]), [3, 5], settings)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.trace, b.trace)
    np.testing.assert_array_equal(a.images[0], c.images[0])
    assert not np.array_equal(a.images[1], c.images[1])


def test_an_item_does_not_depend_on_its_batch_mates(grating_net):
    settings = PLAIN.replace(steps=8, transforms="standard")
    alone = render(grating_net, obj.channel("relu", 1), [9], settings)
    batch = render(grating_net, obj.channel("relu", [0, 1]), [2, 9], settings)
    np.testing.assert_allclose(batch.images[1], alone.images[0], atol=1e-4)


def test_forward_stops_at_the_deepest_needed_layer(effnet):
    calls = []
    net = prepare_model(effnet, keep=["_blocks.3"])
    handle = net._conv_head.register_forward_hook(lambda *_: calls.append(1))
    try:
        render(effnet, obj.channel("_blocks.3", 0), [0], RenderSettings(size=32, steps=2))
    finally:
        handle.remove()
    assert calls == []


def test_folded_model_matches_the_original(effnet):
    folded = prepare_model(effnet, keep=["_blocks.3._project_conv"])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded._blocks[5].modules())
    assert isinstance(folded._blocks[3]._bn2, nn.BatchNorm2d)  # its conv is read: left alone
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), effnet(x), atol=1e-4, rtol=1e-3)
    assert not any(p.requires_grad for p in folded.parameters())
    assert all(p.requires_grad for p in effnet.parameters())


def test_octaves_snapshots_and_resume(grating_net):
    settings = PLAIN.replace(octaves=[(32, 4), (48, 4)], snapshots=[1, 4, 8])
    result = render(grating_net, obj.channel("relu", [0]), [0], settings)
    assert result.images.shape == (1, 48, 48, 3)
    assert result.trace.shape == (8, 1)
    assert sorted(result.snapshots) == [1, 4, 8]
    assert result.snapshots[1].shape == (1, 32, 32, 3) and result.snapshots[8].shape == (1, 48, 48, 3)
    resumed = render(grating_net, obj.channel("relu", [0]), [0], PLAIN.replace(size=48, steps=4),
                     init=result.images)
    assert resumed.trace[0, 0] == pytest.approx(result.final[0], rel=1e-3)


def test_diversity_copies_differ_more_with_the_penalty(effnet):
    settings = RenderSettings(size=48, steps=16)
    base = obj.channel("_blocks.4", 3)
    plain = render(effnet, base, [0, 1, 2], settings)
    diverse = render(effnet, base + 50 * obj.diversity("_blocks.4"), [0, 1, 2], settings)

    def gram_similarity(acts: np.ndarray) -> float:
        g = np.stack([a.reshape(a.shape[0], -1) @ a.reshape(a.shape[0], -1).T for a in acts]).reshape(3, -1)
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        return float((g @ g.T)[np.triu_indices(3, 1)].mean())

    assert gram_similarity(diverse.activations["_blocks.4"]) < gram_similarity(plain.activations["_blocks.4"])


def test_unknown_layer_is_a_clear_error(effnet):
    with pytest.raises(UnknownLayerError, match=r"unknown layer '_blocks.99' \(closest: _blocks.9"):
        render(effnet, obj.channel("_blocks.99", 0), [0], RenderSettings(size=32, steps=1))


def test_channel_out_of_range_is_a_clear_error(effnet):
    with pytest.raises(ValueError, match="channel 500 is out of range for layer '_blocks.3', which has 40"):
        render(effnet, obj.channel("_blocks.3", [0, 500]), [0, 1], RenderSettings(size=32, steps=1))


def test_image_smaller_than_the_transforms_need(effnet):
    with pytest.raises(ImageTooSmallError, match="image size 8 is too small"):
        render(effnet, obj.channel("_blocks.3", 0), [0],
               RenderSettings(size=8, steps=1, transforms=[{"name": "jitter", "size": 16}]))


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_must_be_positive(effnet, steps):
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        render(effnet, obj.channel("_blocks.3", 0), [0], RenderSettings(size=32, steps=steps))


def test_image_too_small_for_the_model_is_a_clear_error(grating_net):
    with pytest.raises(ValueError, match="model failed on a .*16, 16.*use a larger image size"):
        render(grating_net, obj.channel("relu", 0), [0], PLAIN.replace(size=16, steps=1))


def test_one_channel_models_see_the_luminance():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()).eval()
    result = render(net, obj.channel("1", [0, 1]), [0, 1], PLAIN.replace(size=24, steps=4, mean=(0.5,), std=(0.5,)))
    assert result.images.shape == (2, 24, 24, 3)
    assert result.activations["1"].shape == (2, 2, 22, 22)


def test_render_copy_follows_in_place_weight_changes():
    net = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)).eval()
    first = prepare_model(net)
    assert prepare_model(net) is first
    with torch.no_grad():
        net[0].weight.mul_(2)
    second = prepare_model(net)
    assert second is not first
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(second(x), net(x), atol=1e-5, rtol=1e-4)
