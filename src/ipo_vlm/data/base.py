"""Dataset types shared by every loader, the feature store and the optimizer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ipo_vlm.errors import DataError

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``ref`` is stable across machines (a path relative to the dataset's
    image directory, or ``"<pool>/<index>"`` for images packed in an array) and is what
    ``split.json`` records."""

    ref: str
    label: int
    classname: str


@dataclass(frozen=True)
class DatasetInfo:
    """What the rest of the pipeline needs to know about a dataset besides its images."""

    name: str
    classnames: tuple[str, ...]  # index = label
    #: CoOp's hand-crafted template for this dataset, with ``{}`` for the class name
    template: str
    #: the word the meta-prompt uses for what the images show ("pet", "satellite image", ...)
    domain: str


def check_distinct_classnames(classnames: Sequence[str], sources: Sequence[str] | None = None, where: str = "") -> None:
    """A ``DataError`` when two classes share a name: the text encoder sees one prompt for both,
    so the classifier could never separate them. Case and spacing do not make names differ
    (CLIP's tokenizer lowercases). ``sources`` (e.g. folder names) say where each name came from."""
    seen: dict[str, int] = {}
    for i, name in enumerate(classnames):
        key = " ".join(name.lower().split())
        if key in seen:
            j = seen[key]
            if sources is not None:
                what = f"folders {sources[j]!r} and {sources[i]!r} both map to the class name {name!r}"
            else:
                what = f"classes {j} and {i} are both named {name!r}"
            raise DataError(f"{where}{': ' if where else ''}{what}; give them distinct names (a class-name mapping file)")
        seen[key] = i


class Dataset(ABC):
    """A labelled image collection with fixed ``train`` / ``val`` / ``test`` splits."""

    info: DatasetInfo

    @abstractmethod
    def split(self, name: str) -> list[Sample]:
        """All samples of ``"train"``, ``"val"`` or ``"test"``."""

    @abstractmethod
    def open_image(self, sample: Sample) -> "Image.Image":
        """The image as RGB; a ``DataError`` naming the file if it cannot be read."""

    @abstractmethod
    def content_id(self, sample: Sample) -> str:
        """sha256 hex of the image's bytes: the feature store's key."""

    def verify_samples(self, samples: Iterable[Sample]) -> None:
        """Raise ``DataError`` for a sample whose image cannot be read; cheap where it can be
        (file datasets check headers). In-memory datasets have nothing to check."""

    def check_samples(self, samples: Iterable[Sample]) -> None:
        """Raise a ``DataError`` naming the first sample whose image does not exist.

        Cheap (an existence check, not a decode); loaders whose listing already proves
        existence keep this default, which checks nothing."""
