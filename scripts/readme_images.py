"""Rebuild the README's pictures (docs/images/*.png) from a finished default run.

    snakemake --cores all && python scripts/readme_images.py [--results results]

Figures are shrunk copies of the run's own PNGs; the unit page, the concept index and the
protein report are screenshots taken with headless Chromium (Debian's `chromium` and
`chromium-driver`, as the page tests use). Every picture is a small palette PNG (about 50 KB)
written without metadata, so a rerun on the same run gives the same bytes.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 360  # px: three pictures side by side on a GitHub page
LITE0, BLOCK = "efficientnet_lite0", "_blocks.10"

FIGURES = {  # name: path under results/ (the first that exists)
    "render": [f"render/{LITE0}/{BLOCK}/blocks10/grid.png"],
    "progress": [f"render/{LITE0}/{BLOCK}/blocks10/progress.png"],
    "patches": [f"patches/{LITE0}/photos/{BLOCK}/grid_max.png"],
    "atlas": [f"embed/{LITE0}/photos/_conv_head/atlas_umap.png", f"embed/{LITE0}/photos/_conv_head/atlas_tsne.png"],
    "gradcam": [f"attribution/{LITE0}/photos/class_maps.png"],
    "filters": [f"weights/{LITE0}/filters.png"],
}
PAGES = {  # name: (page under results/, height of the window in px)
    "unit_page": (f"gallery/{LITE0}/{BLOCK}/3.html", 1100),
    "concepts": (f"gallery/{LITE0}/{BLOCK}/concepts/index.html", 900),
    "protein": ("attention/index.html", 900),
}


def small_png(image: Image.Image, width: int = WIDTH) -> bytes:
    """`image` shrunk to `width`, 256 colours, no metadata."""
    image = image.convert("RGB")
    height = max(1, round(image.height * width / image.width))
    image = image.resize((width, height), Image.Resampling.LANCZOS).quantize(256, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def first_existing(results: Path, candidates: list[str]) -> Path:
    for name in candidates:
        if (results / name).is_file():
            return results / name
    raise SystemExit(f"readme_images: none of {candidates} under {results}; run `snakemake --cores all` first")


def screenshots(results: Path) -> dict[str, Image.Image]:
    """Each of PAGES as the browser draws it, a 1200 px wide window."""
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import open_browser, wait_for_images

    shots = {}
    with open_browser(width=1200, height=1100) as driver:
        for name, (page, height) in PAGES.items():
            path = results / page
            if not path.is_file():
                raise SystemExit(f"readme_images: {path} is missing; run `snakemake --cores all` first")
            driver.set_window_size(1200, height)
            driver.get(path.resolve().as_uri())
            wait_for_images(driver)
            shots[name] = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
    return shots


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images")
    args = parser.parse_args(argv)
    pictures = {name: Image.open(first_existing(args.results, paths)) for name, paths in FIGURES.items()}
    pictures.update(screenshots(args.results))
    with tempfile.TemporaryDirectory() as scratch:
        for name, image in pictures.items():
            (Path(scratch) / f"{name}.png").write_bytes(small_png(image))
        args.out.mkdir(parents=True, exist_ok=True)
        for made in sorted(Path(scratch).iterdir()):
            shutil.copyfile(made, args.out / made.name)
            print(f"{args.out / made.name}: {made.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
