"""The gallery's interactive embedding map: the data the page reads (known answers), and the page
itself in a real headless Chromium at 10,000 points: it draws every point, hover shows the image's
label and thumbnail, wheel zooms about the cursor, the method and class controls work, offline."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from browser import file_url, open_browser, page_problems
from featvis.gallery.embedmap import build_map, default_thumbnail, map_data, thumbnail_sprite
from featvis.gallery.site import write_assets

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "gallery"


def test_map_data_known_answer():
    table = pd.DataFrame({"path": ["d/10/a.png", "d/2/b.png", "d/2/c.png"], "label": [10, 2, 2], "split": "all",
                          "pca_1": [0.5, 1.0, np.nan], "pca_2": [1.0, 2.0, 3.0],
                          "umap_1": [1.234567891, 0.0, 1.0], "umap_2": [0.0, 0.0, 0.0]})
    data = map_data(table, "map_d.jpg", 32, 2)
    assert data["methods"] == ["pca", "umap"] and data["titles"] == {"pca": "PCA", "umap": "UMAP"}
    assert data["classes"] == ["2", "10"] and data["labels"] == [1, 0, 0]  # digit classes in number order
    assert data["coords"]["pca"] == [0.5, 1.0, 1.0, 2.0, None, 3.0]  # a NaN is a gap, not a point
    assert data["coords"]["umap"][0] == 1.23457
    assert data["names"] == ["10/a.png", "2/b.png", "2/c.png"]


def test_sprite_cells_follow_row_order():
    colours = {"r": (250, 0, 0), "g": (0, 250, 0), "b": (0, 0, 250), "w": (250, 250, 250), "k": (0, 0, 0)}
    sprite, columns = thumbnail_sprite(list(colours), lambda name: np.full((8, 8, 3), colours[name], np.uint8), 8)
    assert columns == 3 and sprite.size == (24, 16)
    for i, name in enumerate(colours):
        assert sprite.getpixel(((i % 3) * 8 + 4, (i // 3) * 8 + 4)) == colours[name]


N_POINTS, N_CLASSES = 10_000, 12


@pytest.fixture(scope="module")
def big_map(tmp_path_factory):
    """A layer folder with a 10,000-point map in two methods over 12 real image files (one per class),
    and point 0 alone far from the rest."""
    root = tmp_path_factory.mktemp("map")
    rng = np.random.default_rng(0)
    files = []
    for k in range(N_CLASSES):
        path = root / "images" / f"class{k}" / "img.png"
        path.parent.mkdir(parents=True)
        Image.new("RGB", (40, 30), tuple(int(v) for v in rng.integers(0, 256, 3))).save(path)
        files.append(str(path))
    labels = rng.integers(0, N_CLASSES, N_POINTS)
    centres = rng.normal(0, 10, (N_CLASSES, 2))
    pca = centres[labels] + rng.normal(0, 1.5, (N_POINTS, 2))
    pca[0] = (60.0, 60.0)
    tsne = rng.normal(0, 1, (N_POINTS, 2))
    table = pd.DataFrame({"path": [files[k] for k in labels], "label": [f"class{k}" for k in labels], "split": "all",
                          "pca_1": pca[:, 0], "pca_2": pca[:, 1], "tsne_1": tsne[:, 0], "tsne_2": tsne[:, 1]})
    table.to_csv(root / "coordinates.csv", index=False)
    layer = root / "gallery" / "net" / "conv"
    thumbnail = functools.lru_cache(maxsize=None)(default_thumbnail())  # 12 files behind 10,000 rows
    name = build_map(layer, "net", "conv", "toy", root / "coordinates.csv", thumbnail=thumbnail)
    write_assets(root / "gallery" / "assets")
    return layer / name, table


@pytest.mark.integration
def test_map_draws_hovers_zooms_offline(big_map):
    page, table = big_map
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with open_browser(height=1200) as driver:  # the whole canvas in view: the pointer moves from its centre
        driver.get(file_url(page))
        canvas = driver.find_element(By.ID, "map")
        state = lambda key: canvas.get_attribute(f"data-{key}")  # noqa: E731
        assert state("method") == "pca" and int(state("drawn")) == N_POINTS
        draw_ms = float(state("draw-ms"))
        assert draw_ms < 200, f"drawing {N_POINTS} points took {draw_ms} ms"
        # the isolated point 0 is drawn in its class's colour where the page says it is
        x, y = driver.execute_script("return window.featvisMap.cssPoint(0)")
        pixel = driver.execute_script(
            "const c = document.getElementById('map'), r = c.width / c.getBoundingClientRect().width;"
            "return Array.from(c.getContext('2d').getImageData(Math.round(arguments[0] * r),"
            " Math.round(arguments[1] * r), 1, 1).data)", x, y)
        classes = sorted(set(table["label"]))
        swatch = driver.execute_script(
            "return getComputedStyle(document.querySelector(`#map-legend li[data-class='${arguments[0]}'] .swatch`))"
            ".backgroundColor", classes.index(table["label"][0]))
        assert f"rgb({pixel[0]}, {pixel[1]}, {pixel[2]})" == swatch
        # hover point 0: its label and file name, and its thumbnail (not the empty grey)
        rect = driver.execute_script("return document.getElementById('map').getBoundingClientRect().toJSON()")
        ActionChains(driver).move_to_element(canvas).move_by_offset(round(x - rect["width"] / 2),
                                                                   round(y - rect["height"] / 2)).perform()
        tip = driver.find_element(By.ID, "map-tip")
        assert tip.is_displayed() and tip.get_attribute("data-index") == "0"
        folder = Path(table["path"][0]).parent.name
        assert driver.find_element(By.ID, "map-label").text == f"{table['label'][0]} · {folder}/img.png"
        grey = driver.execute_script("const d = document.getElementById('map-thumb').getContext('2d')"
                                     ".getImageData(48, 48, 1, 1).data; return [d[0], d[1], d[2]]")
        expected = Image.open(table["path"][0]).convert("RGB").getpixel((20, 15))
        assert max(abs(a - b) for a, b in zip(grey, expected)) <= 12, (grey, expected)  # JPEG sprite
        driver.save_screenshot(str(ARTIFACTS / "map.png"))
        # away from every point: no tooltip
        ActionChains(driver).move_to_element(canvas).move_by_offset(-round(rect["width"] / 2) + 3,
                                                                   round(rect["height"] / 2) - 3).perform()
        assert not tip.is_displayed()
        # wheel zoom about the centre: larger scale, fewer points on screen
        scale = float(state("scale"))
        driver.execute_script(
            "const c = document.getElementById('map'), r = c.getBoundingClientRect();"
            "c.dispatchEvent(new WheelEvent('wheel', {deltaY: -600, clientX: r.left + r.width / 2,"
            " clientY: r.top + r.height / 2, bubbles: true, cancelable: true}))")
        driver.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert float(state("scale")) > 2 * scale and int(state("drawn")) < N_POINTS
        # another method; a class hidden from the legend leaves exactly its points out
        driver.find_element(By.CSS_SELECTOR, '[data-method="tsne"]').click()
        driver.find_element(By.CSS_SELECTOR, '#map-legend li[data-class="0"]').click()
        driver.execute_script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        assert state("method") == "tsne"
        assert int(state("drawn")) == N_POINTS - int((table["label"] == "class0").sum())
        assert not page_problems(driver)
