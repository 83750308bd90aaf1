import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from featvis.render.params import (
    IMAGENET_COLOUR_SQRT,
    colour_matrix,
    colour_sqrt_from_images,
    make_param,
    spectrum_scale,
)


def known_images(size: int = 48) -> torch.Tensor:
    photos = [data.astronaut(), data.chelsea()]
    out = []
    for p in photos:
        side = min(p.shape[:2])
        x = torch.tensor(p[:side, :side], dtype=torch.float32).permute(2, 0, 1)[None] / 255
        out.append(F.interpolate(x, size=(size, size), mode="area"))
    return torch.cat(out).clamp(0.01, 0.99)


@pytest.mark.parametrize("name", ["fourier", "pixel", "laplacian"])
def test_round_trip_of_a_known_image(name):
    images = known_images()
    param = make_param(name, [1, 2], 48)
    param.load_images(images)
    torch.testing.assert_close(param(), images, atol=2e-5, rtol=0)


def test_fourier_round_trip_on_a_non_square_image():
    images = known_images(48)[:, :, :, :40]
    param = make_param("fourier", [1, 2], (48, 40), colour="none")
    param.load_images(images)
    torch.testing.assert_close(param(), images, atol=2e-5, rtol=0)


def test_fourier_scale_is_one_over_frequency():
    scale = spectrum_scale(16, 16).numpy()
    assert scale[0, 1] == pytest.approx(16.0)  # f = 1/16
    assert scale[0, 4] == pytest.approx(4.0)  # f = 1/4
    assert scale[3, 4] == pytest.approx(1 / np.hypot(3 / 16, 4 / 16))
    assert scale[0, 0] == pytest.approx(16.0)  # DC clamped to the lowest frequency


def test_fourier_noise_has_more_low_than_high_frequency_power():
    x = make_param("fourier", [5], 64, colour="none").spatial()[0].detach()
    power = torch.fft.rfft2(x).abs().pow(2).mean(0)
    assert power[1:4, 1:4].mean() > 20 * power[24:32, 24:32].mean()


def test_pixel_noise_is_white():
    x = make_param("pixel", [5], 64, colour="none").spatial()[0].detach()
    power = torch.fft.rfft2(x).abs().pow(2).mean(0)
    assert 0.5 < power[1:4, 1:4].mean() / power[24:32, 24:32].mean() < 2


def test_each_item_depends_on_its_own_seed_only():
    alone = make_param("fourier", [7], 32)()
    batch = make_param("fourier", [3, 7, 9], 32)()
    torch.testing.assert_close(batch[1:2], alone, rtol=0, atol=0)
    assert not torch.equal(batch[0], batch[1])


def test_colour_sqrt_reproduces_the_covariance():
    rng = np.random.default_rng(0)
    mix = np.array([[1.0, 0.5, 0.2], [0.0, 1.0, 0.3], [0.0, 0.0, 0.4]])
    pixels = rng.normal(size=(20000, 3)) @ mix.T
    sqrt = colour_sqrt_from_images(pixels.reshape(100, 200, 3))
    np.testing.assert_allclose(sqrt @ sqrt.T, np.cov(pixels, rowvar=False), rtol=1e-10, atol=1e-12)


def test_imagenet_colour_matrix_is_normalised():
    m = colour_matrix("imagenet").numpy()
    assert np.linalg.norm(m, axis=0).max() == pytest.approx(1.0)
    np.testing.assert_allclose(m, IMAGENET_COLOUR_SQRT / np.linalg.norm(IMAGENET_COLOUR_SQRT, axis=0).max(),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="3x3"):
        colour_matrix(np.eye(2))
    with pytest.raises(ValueError, match="unknown colour"):
        colour_matrix("sepia")


def test_maco_keeps_the_magnitude_and_optimises_phase_only():
    param = make_param("maco", [1, 2], 32)
    assert [n for n, _ in param.named_parameters()] == ["phase"]
    x = param.spatial().detach()
    spectrum = torch.fft.rfft2(x, norm="ortho").abs()
    # inner columns are exact; the DC and Nyquist columns lose their imaginary part
    torch.testing.assert_close(spectrum[..., 1:-1], param.magnitude.expand_as(spectrum)[..., 1:-1],
                               atol=1e-4, rtol=1e-4)
    images = param().detach()
    assert images.shape == (2, 3, 32, 32) and float(images.std()) > 0.05


def test_maco_magnitude_falls_with_frequency():
    magnitude = make_param("maco", [0], 64).magnitude
    assert magnitude[:, 1:3, 1:3].mean() > 10 * magnitude[:, 28:32, 28:32].mean()


def test_shared_lowres_component_is_common_to_all_items():
    param = make_param("pixel", [1, 2, 3], 32, shared_lowres=(4,))
    with torch.no_grad():
        param.shared[0].fill_(0.3)
        param.pixels.zero_()
    x = param.decorrelated()
    torch.testing.assert_close(x, torch.full_like(x, 0.3))


def test_unknown_parametrization_lists_the_known_ones():
    with pytest.raises(KeyError, match="fourier"):
        make_param("cppn", [0], 32)
