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
    """Decode an image file fully (so truncation shows up here, not later) as RGB."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read image {path}: {reason}") from None


def verify_image(path: Path) -> None:
    """A cheap check that ``path`` is a readable image (its header and structure, without
    decoding the pixels); a ``DataError`` naming the file otherwise."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"cannot read image {path}: {reason}") from None


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
        """Every sample's file opens as an image (header and structure, not decoded)."""
        for sample in samples:
            verify_image(self.path(sample))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.info.name!r}, {str(self.image_dir)!r})"
