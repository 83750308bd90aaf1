import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from featvis.render.regularizers import Penalties, blur, l1, l2, total_variation


@pytest.fixture
def images():
    return torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_l1_l2_against_numpy(images):
    x = images.numpy()
    np.testing.assert_allclose(l1()(images).numpy(), np.abs(x - 0.5).reshape(2, -1).mean(1))
    np.testing.assert_allclose(l2(0.2)(images).numpy(), ((x - 0.2) ** 2).reshape(2, -1).mean(1))


def test_total_variation_against_numpy(images):
    x = images.numpy()
    dx = np.abs(np.diff(x, axis=3)).reshape(2, -1).mean(1)
    dy = np.abs(np.diff(x, axis=2)).reshape(2, -1).mean(1)
    expected = dx + dy
    np.testing.assert_allclose(total_variation()(images).numpy(), expected)
    assert total_variation()(torch.full((1, 3, 5, 5), 0.3)).item() == 0


def test_blur_against_scipy_box_filter(images):
    x = images.numpy()
    target = uniform_filter(x, size=(1, 1, 3, 3), mode="nearest")
    expected = 0.5 * ((x - target) ** 2).reshape(2, -1).mean(1)
    np.testing.assert_allclose(blur(3)(images).numpy(), expected, rtol=1e-10)


def test_penalties_are_a_weighted_sum(images):
    total = Penalties([{"name": "tv", "weight": 2.0}, {"name": "l1", "weight": 0.5}])(images)
    torch.testing.assert_close(total, 2 * total_variation()(images) + 0.5 * l1()(images))
    assert not Penalties([])
    with pytest.raises(KeyError, match="unknown regularizer 'l3'"):
        Penalties([{"name": "l3"}])
