"""Captioners for tests over ``ipo_vlm.testing.fakes.FakeDataset``, whose images carry their
label and index in the first pixel: each writes a sentence per image from the class name."""

from __future__ import annotations


class ClassNamingCaptioner:
    """Writes ``sentence(name, index)`` for each image; subclasses choose the sentences."""

    model_id = "class-naming-captioner"

    def __init__(self, classnames):
        self.classnames = list(classnames)

    def sentence(self, name: str, index: int) -> str:
        raise NotImplementedError

    def describe(self, images, instruction):
        out = []
        for image in images:
            label, index, _ = image.getpixel((0, 0))
            out.append(self.sentence(self.classnames[label], index))
        return out
