"""The unit page's accentuation panel and the renders' transparency toggle, from a unit tree on disk."""

from __future__ import annotations

import numpy as np
from PIL import Image

from featvis.core.units import units_dir, write_unit_image
from featvis.gallery.layer import build_layer
from featvis.render.export import save_transparency, transparency_alpha


def _tree(root):
    rng = np.random.default_rng(1)
    render = units_dir(root, "m", "conv", "render", "job")
    path = write_unit_image(render, 2, "copy0", rng.random((16, 16, 3)), {"objective": [0.1, 0.2]})
    ramp = np.tile(np.arange(16, dtype=np.float64), (16, 1))  # more and more gradient to the right
    save_transparency(path, ramp)
    write_unit_image(render, 3, "copy0", rng.random((16, 16, 3)), {"objective": [0.1, 0.2]})  # no map
    accent = units_dir(root, "m", "conv", "accentuate", "photos")
    for rank, (before, after) in enumerate([(2.0, 5.0), (0.0, 0.5)]):
        write_unit_image(accent, 2, f"seed{rank}", rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
        write_unit_image(accent, 2, f"accent{rank}", rng.integers(0, 255, (24, 24, 3), dtype=np.uint8),
                         {"rank": rank, "label": "cat", "before": before, "after": after,
                          "gain": after / before if before > 0 else None, "distance": 0.0412})
    return ramp


def test_transparency_alpha_scales_to_its_percentile():
    alpha = transparency_alpha(np.tile(np.arange(101, dtype=np.float64), (2, 1)))
    assert alpha[0, 0] == 0 and alpha[0, 99] == 255 and alpha[0, 100] == 255 and alpha[0, 50] in (128, 129)
    assert not transparency_alpha(np.zeros((4, 4))).any()  # a map with no gradient: fully transparent


def test_unit_page_shows_accentuations_and_a_transparency_toggle(tmp_path):
    root = tmp_path / "results"
    ramp = _tree(root)
    out = tmp_path / "gallery"
    build_layer(out, root, "m", "conv", {}, [])
    page = (out / "2.html").read_text()
    # the render is plain by default; the checkbox swaps in the RGBA copy whose alpha is the map
    assert 'class="alpha-switch"' in page and "checked" not in page
    rgba = np.asarray(Image.open(out / "img/render.job.0002.copy0.alpha.png"))
    assert rgba.shape == (16, 16, 4)
    np.testing.assert_array_equal(rgba[..., 3], transparency_alpha(ramp))
    assert rgba[0, 0, 3] == 0 and rgba[0, -1, 3] == 255
    # accentuations: each beside its patch, numbers explained, the papers cited
    assert page.index("img/accentuate.photos.0002.seed0.png") < page.index("img/accentuate.photos.0002.accent0.png")
    assert "before 2, after 5, gain 2.5&times;, change 4.12%" in page
    assert "gain n/a (the unit was silent)" in page
    assert "Hamblin" in page and "Fel et al. (2023)" in page
    assert "Dataset: photos" not in page  # accentuations are not a dataset of their own
    other = (out / "3.html").read_text()
    assert "alpha-switch" not in other and "Feature accentuation" not in other
