"""Renderings of 28x28 grey images: the media of the shifted demo condition.

The shifted demo (``--dataset demo-blurry``) shows Fashion-MNIST items out of focus
(``demo-sketch`` as pencil-like sketches), and its stand-in VLM (``demo:fashion-shifted``) was
pretrained on items shown in every medium here. Each rendering is a pure function of the uint8
pixels (numpy only, no randomness), so the bundled datasets and the VLM's training images can be
rebuilt byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: Gaussian blur's standard deviation in pixels
BLUR_SIGMA = 1.5
#: pixelation block size: 28x28 becomes 4x4 blocks of 7x7
PIXEL_BLOCK = 7


def _as_float(images: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return np.asarray(images, dtype=np.float32) / 255.0


def _to_uint8(x: "np.ndarray") -> "np.ndarray":
    import numpy as np

    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def photo(images: "np.ndarray") -> "np.ndarray":
    """The original pixels: a light item on black."""
    import numpy as np

    return np.array(images, dtype=np.uint8, copy=True)


def sketch(images: "np.ndarray") -> "np.ndarray":
    """Dark outlines and creases on white paper: Sobel edge magnitude, scaled per image so its
    strongest edges are black, then inverted."""
    import numpy as np

    x = np.pad(_as_float(images), ((0, 0), (1, 1), (1, 1)), mode="edge")
    gx = (x[:, :-2, 2:] + 2 * x[:, 1:-1, 2:] + x[:, 2:, 2:]) - (x[:, :-2, :-2] + 2 * x[:, 1:-1, :-2] + x[:, 2:, :-2])
    gy = (x[:, 2:, :-2] + 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:]) - (x[:, :-2, :-2] + 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:])
    mag = np.hypot(gx, gy)
    # the 98th percentile rather than the maximum, so one hard corner does not fade every line
    top = np.percentile(mag.reshape(len(mag), -1), 98, axis=1).reshape(-1, 1, 1)
    return _to_uint8(1.0 - np.clip(mag / np.maximum(top, 1e-6), 0.0, 1.0))


def negative(images: "np.ndarray") -> "np.ndarray":
    """A photographic negative: a dark item on white."""
    import numpy as np

    return (255 - np.asarray(images, dtype=np.uint8)).astype(np.uint8)


def blurry(images: "np.ndarray") -> "np.ndarray":
    """Out of focus: a separable Gaussian blur (sigma ``BLUR_SIGMA``), edges padded by reflection."""
    import numpy as np

    radius = int(np.ceil(3 * BLUR_SIGMA))
    t = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (t / BLUR_SIGMA) ** 2)
    kernel /= kernel.sum()
    x = _as_float(images)
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(k * np.take(padded, range(i, i + n), axis=axis) for i, k in enumerate(kernel))
    return _to_uint8(x)


def pixelated(images: "np.ndarray") -> "np.ndarray":
    """Low resolution: the mean of each ``PIXEL_BLOCK`` square, blown back up to 28x28."""
    import numpy as np

    x = _as_float(images)
    n, h, w = x.shape
    b = PIXEL_BLOCK
    blocks = x.reshape(n, h // b, b, w // b, b).mean(axis=(2, 4))
    return _to_uint8(np.repeat(np.repeat(blocks, b, axis=1), b, axis=2))


#: every rendering by name; ``photo`` is the plain demo's medium
RENDERINGS: dict[str, Callable[["np.ndarray"], "np.ndarray"]] = {
    "photo": photo,
    "sketch": sketch,
    "negative": negative,
    "blurry": blurry,
    "pixelated": pixelated,
}


def render(name: str, images: "np.ndarray") -> "np.ndarray":
    """``images`` (n, 28, 28) uint8 in the named rendering, uint8 of the same shape."""
    from ipo_vlm.errors import ConfigError

    if name not in RENDERINGS:
        raise ConfigError(f"unknown rendering {name!r}; known: {', '.join(RENDERINGS)}")
    return RENDERINGS[name](images)


__all__ = ["RENDERINGS", "render"]
