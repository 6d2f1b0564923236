"""CLIP's test-time image transform in PIL + numpy, so that no torchvision is needed.

Resize the shorter side to ``image_size`` (bicubic, the longer side scaled and truncated to
an int, as torchvision's ``Resize(int)`` and transformers do), center-crop a square, scale to
[0, 1] and normalise with CLIP's mean/std. The result matches transformers'
``CLIPImageProcessor`` (PIL backend) to float32 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ipo_vlm.io.hashing import sha256_json

if TYPE_CHECKING:
    from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class ClipTransform:
    """Settings of the transform; ``preprocess_id`` names them for the feature cache."""

    image_size: int = 224
    crop_size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    #: how the crop offset is rounded: "floor" (transformers) or "round" (torchvision/open_clip)
    crop_offset: str = "floor"

    def __post_init__(self) -> None:
        if self.crop_offset not in ("floor", "round"):
            raise ValueError(f"crop_offset must be 'floor' or 'round', got {self.crop_offset!r}")

    @property
    def preprocess_id(self) -> str:
        """Short stable id of these settings: equal ids give identical pixel tensors."""
        spec = {
            "kind": "clip-bicubic-centercrop",
            "size": self.image_size,
            "crop": self.crop_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "offset": self.crop_offset,
        }
        return f"clip{self.image_size}c{self.crop_size}-{sha256_json(spec)[:12]}"

    def __call__(self, image: "Image.Image") -> np.ndarray:
        """One image -> (3, crop, crop) float32."""
        return preprocess_image(image, self)

    def batch(self, images: Sequence["Image.Image"]) -> np.ndarray:
        """Images -> (n, 3, crop, crop) float32."""
        if not images:
            return np.zeros((0, 3, self.crop_size, self.crop_size), dtype=np.float32)
        return np.stack([preprocess_image(im, self) for im in images])


def to_rgb(image: "Image.Image") -> "Image.Image":
    """RGB copy; transparency is composited onto white, as CLIP's processors do."""
    from PIL import Image

    has_alpha = "A" in image.getbands() or image.info.get("transparency") is not None
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling the shorter side to ``short_side``."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def _crop_offset(length: int, crop: int, mode: str) -> int:
    return (length - crop) // 2 if mode == "floor" else int(round((length - crop) / 2.0))


def preprocess_image(image: "Image.Image", t: ClipTransform) -> np.ndarray:
    """Resize, center-crop and normalise one PIL image to (3, crop, crop) float32."""
    from PIL import Image

    rgb = to_rgb(image)
    w, h = resized_size(rgb.width, rgb.height, t.image_size)
    if (w, h) != rgb.size:
        rgb = rgb.resize((w, h), resample=Image.Resampling.BICUBIC)
    arr = np.asarray(rgb, dtype=np.uint8)
    c = t.crop_size
    if h < c or w < c:
        # only reachable when crop_size > image_size: zero-pad like the reference transforms
        padded = np.zeros((max(h, c), max(w, c), 3), dtype=np.uint8)
        top, left = (padded.shape[0] - h + 1) // 2, (padded.shape[1] - w + 1) // 2
        padded[top : top + h, left : left + w] = arr
        arr, h, w = padded, padded.shape[0], padded.shape[1]
    top, left = _crop_offset(h, c, t.crop_offset), _crop_offset(w, c, t.crop_offset)
    arr = arr[top : top + c, left : left + c]
    x = arr.astype(np.float32) * np.float32(1.0 / 255.0)
    x = (x - np.asarray(t.mean, dtype=np.float32)) / np.asarray(t.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)
