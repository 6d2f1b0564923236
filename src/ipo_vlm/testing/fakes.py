"""Torch-free stand-ins for tests: a small synthetic dataset and a bag-of-words "VLM".

They run the real pipeline (split, feature store, scorer, loop, evaluation) in well under a
second, so tests of code around the optimizer need neither model weights nor image files::

    from ipo_vlm.runs.optimize import Backends, optimize
    from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
    from ipo_vlm.testing.scripted import ScriptedLLM
    from ipo_vlm.captioner.base import NoCaptioner

    ds = FakeDataset()
    backends = Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM([...]), NoCaptioner())
    result = optimize(config, "runs/test", backends=backends)

Scores are deterministic and depend on the template's words, so different templates really
score differently (a template that repeats the domain word helps, as with CLIP).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample
from ipo_vlm.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

FAKE_CLASSES = ("red shirt", "blue coat", "green hat", "white shoe", "black bag", "grey scarf")
_DIM = 64


def _word_vector(word: str) -> "np.ndarray":
    import numpy as np

    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(_DIM)


def _normalize(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class FakeDataset(Dataset):
    """``per_class`` train, 4 val and ``test_per_class`` test images for each class; each image
    is a 4x4 RGB picture whose first pixel encodes its label and its sample number."""

    def __init__(self, classnames: Sequence[str] = FAKE_CLASSES, per_class: int = 8, test_per_class: int = 10) -> None:
        self.info = DatasetInfo(name="fake", classnames=tuple(classnames), template="a photo of a {}, a kind of clothing.", domain="clothing item")
        self._counts = {"train": per_class, "val": 4, "test": test_per_class}

    def split(self, name: str) -> list[Sample]:
        if name not in self._counts:
            raise DataError(f"unknown split {name!r}")
        return [
            Sample(f"{name}/{label}/{i}", label, classname)
            for label, classname in enumerate(self.info.classnames)
            for i in range(self._counts[name])
        ]

    def open_image(self, sample: Sample) -> "Image.Image":
        from PIL import Image

        part, label, index = sample.ref.split("/")
        offset = {"train": 0, "val": 100, "test": 150}[part]
        image = Image.new("RGB", (4, 4))
        image.putpixel((0, 0), (int(label), int(index) + offset, 7))
        return image

    def content_id(self, sample: Sample) -> str:
        return hashlib.sha256(f"fake:{sample.ref}".encode()).hexdigest()


class FakeVLM:
    """Text: the normalised sum of per-word random vectors. Image of class c: the class name's
    words plus "photo" and "clothing", plus per-image noise. Nothing is learned or downloaded."""

    preprocess_id = "fake-pixels"
    logit_scale = 10.0
    max_text_tokens = 40

    def __init__(self, classnames: Sequence[str] = FAKE_CLASSES, noise: float = 3.0) -> None:
        self.classnames = tuple(classnames)
        self.noise = noise
        self.model_id = "fake-bow:" + hashlib.sha256("|".join(self.classnames).encode()).hexdigest()[:12] + f":{noise}"

    def encode_texts(self, texts: Sequence[str]) -> "np.ndarray":
        import numpy as np

        rows = [sum((_word_vector(w) for w in t.lower().replace(",", " ").replace(".", " ").split()), np.zeros(_DIM)) for t in texts]
        return _normalize(np.stack(rows))

    def encode_images(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        import numpy as np

        rows = []
        for image in images:
            label, index, _ = image.getpixel((0, 0))
            words = self.classnames[label].split() + ["photo", "clothing"]
            signal = _normalize(sum(_word_vector(w) for w in words))
            noise = np.random.default_rng(label * 1000 + index).standard_normal(_DIM) / np.sqrt(_DIM)
            rows.append(signal + self.noise * noise)
        return _normalize(np.stack(rows))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]
