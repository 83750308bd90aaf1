import numpy as np
import pytest
import torch
import torch.nn.functional as F

from featvis.render.transforms import (
    ColourJitter,
    Compose,
    ImageTooSmallError,
    ItemRng,
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    Resize,
    build_transforms,
    derive_seed,
)


@pytest.fixture
def images():
    return torch.rand(3, 3, 20, 20, generator=torch.Generator().manual_seed(0))


def test_jitter_is_an_exact_crop_at_each_items_own_offset(images):
    rng, twin = ItemRng([1, 2, 3]), ItemRng([1, 2, 3])
    out = Jitter(4)(images, rng)
    dx = twin.choice(range(5)).long()
    dy = twin.choice(range(5)).long()
    assert out.shape == (3, 3, 16, 16)
    for i in range(3):
        expected = images[i, :, dy[i]:dy[i] + 16, dx[i]:dx[i] + 16]
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)


def test_pad_matches_numpy(images):
    out = Pad(3, fill=0.25)(images, ItemRng([0, 0, 0]))
    expected = np.pad(images.numpy(), ((0, 0), (0, 0), (3, 3), (3, 3)), constant_values=0.25)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_rotation_by_90_degrees_is_rot90(images):
    out = RandomRotate([90])(images, ItemRng([0, 1, 2]))
    expected = torch.rot90(images, k=1, dims=(2, 3))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_unit_scale_and_same_size_resize_are_identity(images):
    torch.testing.assert_close(RandomScale([1.0])(images, ItemRng([0, 1, 2])), images, atol=1e-5, rtol=0)
    torch.testing.assert_close(Resize(20)(images, ItemRng([0, 1, 2])), images, atol=1e-5, rtol=0)


def test_resize_matches_bilinear_interpolate(images):
    out = Resize(10)(images, ItemRng([0, 1, 2]))
    expected = F.interpolate(images, size=(10, 10), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_fused_chain_equals_the_steps_one_by_one(images):
    specs = "standard"
    fused = build_transforms(specs, fuse=True)(images, ItemRng([4, 5, 6]))
    steps = build_transforms(specs, fuse=False)(images, ItemRng([4, 5, 6]))
    assert fused.shape == steps.shape == (3, 3, 20 + 24 - 12, 20 + 24 - 12)
    # resampling twice blurs a little more than resampling once: compare smooth images
    smooth = F.avg_pool2d(images, 5, 1, 2, count_include_pad=False)
    fused = build_transforms(specs, fuse=True)(smooth, ItemRng([4, 5, 6]))
    steps = build_transforms(specs, fuse=False)(smooth, ItemRng([4, 5, 6]))
    assert (fused - steps).abs().mean() < 0.01


def test_colour_jitter_is_per_item_and_bounded(images):
    out = ColourJitter(gain=0.1, offset=0.05)(images, ItemRng([1, 2, 3]))
    ratio = (out - images).abs().max()
    assert 0 < ratio <= 0.1 * images.max() + 0.05 + 1e-6
    a = ColourJitter()(images, ItemRng([1, 2, 3]))
    b = ColourJitter()(images, ItemRng([1, 9, 3]))
    torch.testing.assert_close(a[[0, 2]], b[[0, 2]])
    assert not torch.equal(a[1], b[1])


def test_item_rng_streams_do_not_depend_on_the_batch():
    alone = ItemRng([7]).uniform(0, 1)
    batch = ItemRng([3, 7]).uniform(0, 1)
    assert alone[0] == batch[1]
    assert derive_seed(1, "a") == derive_seed(1, "a") != derive_seed(2, "a")


def test_image_too_small_for_the_transforms():
    chain = Compose([Jitter(8)])
    with pytest.raises(ImageTooSmallError, match="image size 6 is too small.*Jitter needs at least 9 px"):
        chain.check_size(6)
    assert build_transforms("standard").check_size(128) == (140, 140)


def test_unknown_transform_and_bad_spec():
    with pytest.raises(KeyError, match="unknown transform 'warp'.*jitter"):
        build_transforms([{"name": "warp"}])
    with pytest.raises(ValueError, match="'standard' or 'none'"):
        build_transforms("fancy")


def test_affine_grid_matches_torch():
    from featvis.render.transforms import affine_grid

    theta = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(0))
    expected = F.affine_grid(theta, [3, 1, 7, 9], align_corners=False)
    torch.testing.assert_close(affine_grid(theta, 7, 9), expected, atol=1e-6, rtol=1e-5)


def test_post_map_rides_on_the_last_resampling(images):
    gain, bias = torch.tensor([2.0, 3.0, 4.0]).reshape(1, 3, 1, 1), torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    for specs in ("standard", [{"name": "pad", "size": 2}], [{"name": "colour_jitter"}], "none"):
        plain = build_transforms(specs)(images, ItemRng([1, 2, 3]))
        mapped = build_transforms(specs)(images, ItemRng([1, 2, 3]), post=(gain, bias))
        torch.testing.assert_close(mapped, plain * gain + bias, atol=1e-5, rtol=1e-5)
