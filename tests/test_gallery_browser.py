"""The gallery of a real run, opened in a real headless Chromium from file://: every page
reachable from the index is visited, every image decodes, nothing is logged as an error and
no request leaves file://. Screenshots of an index, a layer and a unit page are kept in
test-artifacts/gallery/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import numpy as np
import pytest

from browser import file_url, open_browser, page_problems

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "gallery"


def _links(driver) -> list[str]:
    return driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")


def test_every_gallery_page_opens_offline(tiny_run):
    workdir, _ = tiny_run
    gallery = workdir / "results/gallery"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    start = file_url(gallery / "index.html")
    seen, queue, problems = set(), [start], {}
    with open_browser() as driver:
        while queue:
            url = queue.pop()
            if url in seen:
                continue
            seen.add(url)
            driver.get(url)
            if found := page_problems(driver):
                problems[url] = found
            for link in _links(driver):
                link = urldefrag(link).url
                assert link.startswith("file://"), f"{url} links out of the folder: {link}"
                path = Path(unquote(urlparse(link).path))
                assert path.exists(), f"{url} links to a missing file: {path}"
                if path.suffix == ".html" and link not in seen:
                    queue.append(link)
        for name, page in (("index", "index.html"), ("layer", "efficientnet_lite0/_blocks.4/index.html"),
                           ("unit", "efficientnet_lite0/_blocks.4/1.html"),
                           ("concepts", "efficientnet_lite0/_blocks.4/concepts/topk_sae/index.html"),
                           ("concept", "efficientnet_lite0/_blocks.4/concepts/topk_sae/0.html")):
            driver.get(file_url(gallery / page))
            page_problems(driver)  # load every lazy image before the picture is taken
            driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    assert not problems, problems
    # every unit of every analysed layer has a page, reached by following links from the index
    visited = {Path(unquote(urlparse(u).path)).relative_to(gallery).as_posix() for u in seen}
    for model, dataset, layer in (("efficientnet_lite0", "photos", "_blocks.1"),
                                  ("efficientnet_lite0", "photos", "_blocks.4"),
                                  ("mnist_cnn", "mnist5k", "conv2"), ("mnist_cnn", "mnist5k", "fc")):
        width = np.load(workdir / f"results/features/{model}/{dataset}/{layer}/max.npy", mmap_mode="r").shape[1]
        assert {f"{model}/{layer}/{c}.html" for c in range(width)} <= visited, (model, layer)
    assert "proteins/index.html" in visited
    # the interactive embedding maps of the embed layers, linked from their layer pages
    assert {"efficientnet_lite0/_blocks.4/map_photos.html", "mnist_cnn/conv2/map_mnist5k.html"} <= visited
    # every live concept of every method has a page, reached from the layer page; dead ones have none
    quality = json.loads((workdir / "results/concepts/efficientnet_lite0/photos/_blocks.4/quality.json").read_text())
    for method, record in quality["methods"].items():
        live = [c for c in range(record["n_concepts"]) if c not in record["dead"]]
        pages = {f"efficientnet_lite0/_blocks.4/concepts/{method}/{c}.html" for c in live}
        assert pages <= visited and f"efficientnet_lite0/_blocks.4/concepts/{method}/index.html" in visited, method
        assert not any(f"concepts/{method}/{c}.html" in page for c in record["dead"] for page in visited)


def test_layer_tiles_sort_in_the_browser(tiny_run):
    workdir, _ = tiny_run
    layer = workdir / "results/gallery/efficientnet_lite0/_blocks.4/index.html"
    maxima = np.load(workdir / "results/features/efficientnet_lite0/photos/_blocks.4/max.npy").max(axis=0)
    with open_browser() as driver:
        driver.get(file_url(layer))
        order = driver.execute_script("return Array.from(document.querySelectorAll('#tiles a'))"
                                      ".map(a => +a.dataset.channel)")
        assert order == list(range(len(maxima)))
        driver.execute_script("const s = document.getElementById('sort'); s.value = 'max';"
                              "s.dispatchEvent(new Event('change'))")
        order = driver.execute_script("return Array.from(document.querySelectorAll('#tiles a'))"
                                      ".map(a => +a.dataset.channel)")
        driver.execute_script("const s = document.getElementById('sort'); s.value = 'score';"
                              "s.dispatchEvent(new Event('change'))")
        by_score = driver.execute_script("return Array.from(document.querySelectorAll('#tiles a'))"
                                         ".map(a => +a.dataset.channel)")
        assert not page_problems(driver)
    assert order == sorted(range(len(maxima)), key=lambda c: (-float(f"{maxima[c]:.6g}"), c))
    # the path-check score of the rendered units (trust stage) first, highest first; the rest by channel
    record = json.loads((workdir / "results/trust/efficientnet_lite0/_blocks.4/b4.json").read_text())
    scores = {u["channel"]: u["checks"][0]["score"] for u in record["units"] if u["checks"][0]["score"] is not None}
    assert by_score == sorted(range(len(maxima)), key=lambda c: (c not in scores, -float(f"{scores.get(c, 0):.6g}"), c))


def test_unit_page_shows_each_stage(tiny_run):
    workdir, _ = tiny_run
    unit = (workdir / "results/gallery/efficientnet_lite0/_blocks.4/1.html").read_text()
    # render (job b4 renders channels 0 and 1), top patches, DeconvNet (attribution.channels: 2), histogram
    for needle in ("img/render.b4.0001.copy0.png", "img/patches_max.photos.0001.patches.jpg",
                   "img/deconvnet.photos.0001.deconvnet.jpg", "maximum activation per image", "<polyline",
                   "Can this render be trusted?", "trust-curve"):
        assert needle in unit, needle
    assert re.search(r"activation [\d.e+-]+&times; the dataset maximum", unit)


def test_concept_tiles_sort_by_frequency_and_stability(tiny_run):
    workdir, _ = tiny_run
    index = workdir / "results/gallery/efficientnet_lite0/_blocks.4/concepts/nmf/index.html"
    record = json.loads((workdir / "results/concepts/efficientnet_lite0/photos/_blocks.4/quality.json")
                        .read_text())["methods"]["nmf"]
    live = [c for c in range(record["n_concepts"]) if c not in record["dead"]]
    orders = {}
    with open_browser() as driver:
        driver.get(file_url(index))
        for key in ("frequency", "stability"):
            driver.execute_script(f"const s = document.getElementById('sort'); s.value = '{key}';"
                                  "s.dispatchEvent(new Event('change'))")
            orders[key] = driver.execute_script("return Array.from(document.querySelectorAll('#tiles a'))"
                                                ".map(a => +a.dataset.channel)")
        assert not page_problems(driver)
    for key, values in (("frequency", record["frequency"]), ("stability", record["stability_per_concept"])):
        assert orders[key] == sorted(live, key=lambda c: (-float(f"{values[c]:.6g}"), c)), key
    text = index.read_text()
    for number in ("r2", "l0", "dead_fraction", "stability"):
        assert record["how_to_read"][number] in text.replace("&#x27;", "'"), number


def test_concept_page_shows_its_parts_and_unit_pages_link_back(tiny_run):
    workdir, _ = tiny_run
    layer = workdir / "results/gallery/efficientnet_lite0/_blocks.4"
    page = (layer / "concepts/topk_sae/0.html").read_text()
    for needle in ("img/0000.patches.jpg", "img/0000.heatmap.jpg", "img/0000.render.png", "Units that load most",
                   "Classes where it is most present", 'rel="next"'):
        assert needle in page, needle
    caption = json.loads((workdir / "results/units/efficientnet_lite0/_blocks.4/concepts/topk_sae/0000.patches.json")
                         .read_text())
    unit = caption["units"][0][0]
    assert 'href="concepts/topk_sae/0.html"' in (layer / f"{unit}.html").read_text()
    assert 'href="concepts/nmf/index.html"' in (layer / "index.html").read_text()
