"""The VLM protocol: two encoders into one normalised space, plus what scoring needs to know."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@runtime_checkable
class VisionLanguageModel(Protocol):
    #: stable identifier of the weights (part of every cache key)
    model_id: str
    #: identifies the image preprocessing (part of the image-feature cache key)
    preprocess_id: str
    #: multiplier of cosine similarity in the logits (CLIP: 100)
    logit_scale: float
    #: the text encoder's context length including special tokens (CLIP: 77)
    max_text_tokens: int

    def encode_images(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        """(n, d) float32, rows L2-normalised."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """(n, d) float32, rows L2-normalised. Raises if a text exceeds ``max_text_tokens``."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text including special tokens, without truncation."""
        ...
