"""Datasets whose images are files under one image directory (folder and CoOp layouts)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample
from ipo_vlm.errors import ConfigError, DataError
from ipo_vlm.io.hashing import sha256_file

if TYPE_CHECKING:
    from PIL import Image

SPLITS = ("train", "val", "test")
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif"}
)


def is_image_name(name: str) -> bool:
    """True for a visible file name with a common image extension (any case)."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def readable_classname(raw: str) -> str:
    """CoOp convention: underscores separate words in class names."""
    return " ".join(raw.replace("_", " ").split())


def list_dir(path: Path) -> list[tuple[str, bool]]:
    """Sorted ``(name, is_dir)`` of a folder's visible entries; a ``DataError`` if unreadable."""
    try:
        with os.scandir(path) as it:
            entries = [(e.name, e.is_dir()) for e in it if not e.name.startswith(".")]
    except FileNotFoundError:
        raise DataError(f"folder not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot list {path}: {e.strerror}") from None
    return sorted(entries)


def open_rgb(path: Path) -> "Image.Image":
    """Decode an image file fully (so truncation shows up here, not later) as RGB. 16-bit images
    are scaled to 8 bits (not clipped at 255); an image too large to decode safely (PIL's
    decompression-bomb limit) is a ``DataError`` naming the file, like any unreadable one."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb(im)
    except _image_errors() as e:
        raise DataError(f"cannot read image {path}: {_reason(e)}") from None


def _image_errors() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError, MemoryError)


def _reason(e: BaseException) -> str:
    from PIL import Image

    if isinstance(e, Image.DecompressionBombError):
        import re

        found = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        return f"too large to decode safely ({size}; PIL refuses more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,})"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


#: PIL modes of more than 8 bits per channel, which ``convert("RGB")`` would clip at 255
_WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def to_rgb(im: "Image.Image") -> "Image.Image":
    """``im`` as 8-bit RGB; 16-bit (and 32-bit integer or float) grey images are scaled by their
    bit depth, not clipped."""
    if im.mode not in _WIDE_MODES:
        return im.convert("RGB")
    import numpy as np
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    if im.mode == "F":
        top = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else 255.0
    else:
        top = 65535.0 if im.mode.startswith("I;16") or (a.size and float(a.max()) > 255) else 255.0
    grey = np.clip(np.rint(np.nan_to_num(a) * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def verify_image(path: Path) -> None:
    """A cheap check that ``path`` is a readable image (its header and structure, without
    decoding the pixels); a ``DataError`` naming the file otherwise."""
    from PIL import Image

    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.verify()
    except _image_errors() as e:
        raise DataError(f"cannot read image {path}: {_reason(e)}") from None


def decode_check(paths: Iterable[Path]) -> None:
    """Every image decodes completely (a truncated JPEG passes :func:`verify_image`, not this).

    Decoding is the slow part, so a file is decoded once: the sha256 of every file that decoded is
    kept in the cache dir (``images/decoded.txt``) and a later run only hashes it again."""
    from ipo_vlm.io.paths import cache_dir

    record = cache_dir("images") / "decoded.txt"
    try:
        known = set(record.read_text(encoding="ascii").split())
    except (OSError, UnicodeDecodeError):
        known = set()
    fresh: list[str] = []
    try:
        for path in paths:
            digest = image_sha256(path)
            if digest in known:
                continue
            open_rgb(path)
            known.add(digest)
            fresh.append(digest)
    finally:
        if fresh:
            try:
                with open(record, "a", encoding="ascii") as f:
                    f.write("".join(d + "\n" for d in fresh))
            except OSError:
                pass  # only a cache: the next run decodes these again


def image_sha256(path: Path) -> str:
    """sha256 hex of an image file's bytes; a missing or unreadable file is a ``DataError``."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror}") from None


class FileDataset(Dataset):
    """Samples whose ``ref`` is a path relative to ``image_dir``; splits given as lists."""

    def __init__(self, info: DatasetInfo, image_dir: Path, splits: dict[str, list[Sample]]) -> None:
        self.info = info
        self.image_dir = Path(image_dir)
        self._splits = splits

    def split(self, name: str) -> list[Sample]:
        if name not in self._splits:
            raise ConfigError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
        return list(self._splits[name])

    def path(self, sample: Sample) -> Path:
        """Where the sample's image file lives."""
        return self.image_dir / sample.ref

    def open_image(self, sample: Sample) -> "Image.Image":
        return open_rgb(self.path(sample))

    def content_id(self, sample: Sample) -> str:
        return image_sha256(self.path(sample))

    def check_samples(self, samples: Iterable[Sample]) -> None:
        for sample in samples:
            path = self.path(sample)
            if not path.is_file():
                raise DataError(f"image listed for class {sample.classname!r} not found: {path}")

    def verify_samples(self, samples: Iterable[Sample]) -> None:
        """Every sample's file exists and decodes (once per file content: see :func:`decode_check`)."""
        samples = list(samples)
        self.check_samples(samples)
        decode_check(self.path(s) for s in samples)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, {str(self.image_dir)!r})"
