"""Hand-made stand-ins shared by the captioner tests (no tests here): an in-memory dataset, a
counting captioner and a keyword VLM whose "right" attribute phrase is known in advance."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample

COLOURS = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}


def solid(colour: str, size: int = 16) -> Image.Image:
    return Image.new("RGB", (size, size), COLOURS[colour])


class MemoryDataset(Dataset):
    """Samples ``"<i>"`` whose images live in a list."""

    def __init__(self, images: list[Image.Image], labels: list[int], classnames: Sequence[str], domain: str = "pet"):
        self.info = DatasetInfo("memory", tuple(classnames), "a photo of a {}.", domain)
        self.images = images
        self.samples = [Sample(str(i), lab, classnames[lab]) for i, lab in enumerate(labels)]
        self.opened = 0

    def split(self, name: str) -> list[Sample]:
        return list(self.samples)

    def open_image(self, sample: Sample) -> Image.Image:
        self.opened += 1
        return self.images[int(sample.ref)]

    def content_id(self, sample: Sample) -> str:
        buf = io.BytesIO()
        self.images[int(sample.ref)].save(buf, format="PNG")
        return hashlib.sha256(buf.getvalue()).hexdigest()


class CountingCaptioner:
    """Returns scripted texts per image index (by colour) and counts the images it saw."""

    def __init__(self, texts_by_colour: dict[tuple[int, int, int], str], model_id: str = "fake:v1"):
        self.model_id = model_id
        self.texts = texts_by_colour
        self.seen = 0
        self.instructions: list[str] = []

    def describe(self, images, instruction):
        self.seen += len(images)
        self.instructions.append(instruction)
        return [self.texts[img.getpixel((0, 0))] for img in images]


class KeywordVLM:
    """Text i has a 1 in dimension k if it contains keyword k (each test phrase holds exactly one, so
    phrases the image says nothing about tie); an image has a 1 in the dimension
    of its dominant colour. A shared constant dimension keeps every vector non-zero."""

    model_id = "keyword-vlm"
    preprocess_id = "none"
    logit_scale = 100.0
    max_text_tokens = 77
    KEYWORDS = ["red", "green", "blue", "striped", "dotted", "round", "square", "oval"]

    def __init__(self) -> None:
        self.text_calls: list[int] = []

    @staticmethod
    def _norm(m: np.ndarray) -> np.ndarray:
        return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)

    def encode_texts(self, texts):
        self.text_calls.append(len(texts))
        rows = [[float(k in t.lower().split()) for k in self.KEYWORDS] + [1.0] for t in texts]
        return self._norm(np.array(rows))

    def encode_images(self, images):
        rows = []
        for img in images:
            mean = np.asarray(img.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
            row = [0.0] * (len(self.KEYWORDS) + 1)
            row[int(mean.argmax())] = 1.0
            row[-1] = 1.0
            rows.append(row)
        return self._norm(np.array(rows))

    def count_tokens(self, texts):
        return [len(t.split()) + 2 for t in texts]
