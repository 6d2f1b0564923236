"""Images as ``data:`` URLs for chat APIs that take ``image_url`` content parts."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from ipo_vlm.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

IMAGE_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


def fit_within(image: "Image.Image", max_side: int | None) -> "Image.Image":
    """``image`` shrunk (aspect kept) so that its longer side is at most ``max_side`` pixels.

    Vision APIs downscale large images anyway; sending them smaller saves bandwidth and time."""
    from PIL import Image

    if not max_side or max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC)


def image_data_url(image: "Image.Image", fmt: str = "png", max_side: int | None = None, quality: int = 90) -> str:
    """A base64 ``data:`` URL of ``image`` as RGB PNG (lossless) or JPEG."""
    if fmt not in IMAGE_FORMATS:
        raise ConfigError(f"unknown image format {fmt!r}; known: {', '.join(IMAGE_FORMATS)}")
    pil_format, mime = IMAGE_FORMATS[fmt]
    buf = io.BytesIO()
    rgb = fit_within(image.convert("RGB"), max_side)
    if pil_format == "JPEG":
        rgb.save(buf, format=pil_format, quality=quality)
    else:
        rgb.save(buf, format=pil_format)
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"
