"""Rebuild the README's pictures (docs/images/*.png) from a finished default run.

    snakemake --cores all && python scripts/readme_images.py [--results results]

Figures are shrunk copies of the run's own PNGs; the unit page, the concept index and the
protein report are screenshots taken with headless Chromium (Debian's `chromium` and
`chromium-driver`, as the page tests use). Every picture is a small palette PNG (about 50 KB)
written atomically without metadata, so a rerun on the same run gives the same bytes.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

from featvis.core.io import save_image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 360  # px: three pictures side by side on a GitHub page
LITE0, BLOCK = "efficientnet_lite0", "_blocks.10"

FIGURES = {  # name: (path under results/, the part kept: left, top, right, bottom as fractions)
    "render": (f"render/{LITE0}/{BLOCK}/blocks10/grid.png", (0, 0, 0.5, 1)),
    "progress": (f"render/{LITE0}/{BLOCK}/blocks10/progress.png", (0, 0, 1, 0.26)),
    "patches": (f"patches/{LITE0}/photos/{BLOCK}/grid_max.png", (0, 0, 1, 0.3)),
    "atlas": (f"embed/{LITE0}/photos/_conv_head/atlas_umap.png", (0, 0, 1, 1)),
    "gradcam": (f"attribution/{LITE0}/photos/class_maps.png", (0, 0, 1, 0.5)),
}
PAGES = {  # name: (page under results/, the element shown: a CSS selector, or None for the page's top)
    "unit_page": (f"gallery/{LITE0}/{BLOCK}/3.html", None),
    "trust": (f"gallery/{LITE0}/{BLOCK}/3.html", "section#trust"),
    "concepts": (f"gallery/{LITE0}/{BLOCK}/concepts/topk_sae/index.html", None),
    "protein": ("attention/trastuzumab_VH/report/index.html", None),
}
HEIGHT = 300  # px: page screenshots are cut to this height (at WIDTH)


def small(image: Image.Image, width: int = WIDTH) -> Image.Image:
    """``image`` shrunk to ``width``, 256 colours."""
    image = image.convert("RGB")
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS).quantize(256, dither=Image.Dither.NONE)


def figure(results: Path, name: str, box: tuple[float, float, float, float]) -> Image.Image:
    """A run's figure, cut to ``box``."""
    path = results / name
    if not path.is_file():
        raise SystemExit(f"readme_images: {path} is missing; run `snakemake --cores all` first")
    image = Image.open(path)
    left, top, right, bottom = box
    return image.crop((round(left * image.width), round(top * image.height),
                       round(right * image.width), round(bottom * image.height)))


def screenshots(results: Path) -> dict[str, Image.Image]:
    """Each of PAGES as the browser draws it in a 1000 px wide window: the page's top, or one element."""
    sys.path.insert(0, str(ROOT / "tests"))
    from selenium.webdriver.common.by import By

    from browser import open_browser, wait_for_images

    shots = {}
    with open_browser(width=1000, height=1400) as driver:
        for name, (page, selector) in PAGES.items():
            path = results / page
            if not path.is_file():
                raise SystemExit(f"readme_images: {path} is missing; run `snakemake --cores all` first")
            driver.get(path.resolve().as_uri())
            wait_for_images(driver)  # (scrolls every image into view)
            driver.execute_script("window.scrollTo(0, 0)")
            if selector:
                png = driver.find_element(By.CSS_SELECTOR, selector).screenshot_as_png
            else:
                png = driver.get_screenshot_as_png()
            shot = Image.open(io.BytesIO(png))
            shots[name] = shot.crop((0, 0, shot.width, min(shot.height, round(shot.width * HEIGHT / WIDTH))))
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images")
    args = parser.parse_args(argv)
    pictures = {name: figure(args.results, path, box) for name, (path, box) in FIGURES.items()}
    pictures.update(screenshots(args.results))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, image in sorted(pictures.items()):
        path = args.out / f"{name}.png"
        save_image(path, small(image), format="PNG", optimize=True)  # atomic, no metadata
        print(f"{path}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
