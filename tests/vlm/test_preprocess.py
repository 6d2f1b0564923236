"""The PIL+numpy CLIP transform against transformers' own (PIL) CLIP image processor."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ipo_vlm.vlm.preprocess import ClipTransform, resized_size

SIZES = [(300, 200), (200, 300), (224, 224), (225, 225), (227, 640), (640, 227), (50, 80), (17, 1000), (233, 229)]


def _noise(w: int, h: int, seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return im.convert(mode) if mode != "RGB" else im


@pytest.mark.parametrize("side", [224, 32])
def test_matches_transformers_clip_image_processor(side: int) -> None:
    from transformers import CLIPImageProcessorPil

    ref_proc = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    ours = ClipTransform(image_size=side, crop_size=side)
    for i, (w, h) in enumerate(SIZES):
        image = _noise(w, h, seed=i)
        ref = ref_proc(images=image, return_tensors="np")["pixel_values"][0]
        got = ours(image)
        assert got.shape == ref.shape == (3, side, side)
        assert got.dtype == np.float32
        assert np.abs(got - ref).max() < 1e-5, (w, h)


def test_grey_and_transparent_images_match_too() -> None:
    from transformers import CLIPImageProcessorPil

    ref_proc = CLIPImageProcessorPil()
    grey = _noise(260, 240, seed=1, mode="L")
    rgba = _noise(240, 260, seed=2).convert("RGBA")
    rgba.putalpha(Image.fromarray(np.linspace(0, 255, 240 * 260).astype(np.uint8).reshape(260, 240)))
    for image in (grey, rgba):
        ref = ref_proc(images=image, return_tensors="np")["pixel_values"][0]
        assert np.abs(ClipTransform()(image) - ref).max() < 1e-5


def test_batch_stacks_and_normalises_known_pixel() -> None:
    t = ClipTransform(image_size=8, crop_size=8)
    white = Image.new("RGB", (16, 8), (255, 255, 255))
    out = t.batch([white, white])
    assert out.shape == (2, 3, 8, 8)
    expected = (1.0 - np.array(t.mean)) / np.array(t.std)
    np.testing.assert_allclose(out[0, :, 3, 3], expected, rtol=1e-6)


def test_resized_size_scales_shorter_side() -> None:
    assert resized_size(300, 200, 224) == (336, 224)
    assert resized_size(200, 300, 224) == (224, 336)
    assert resized_size(17, 1000, 224) == (224, 13176)


def test_preprocess_id_changes_with_settings() -> None:
    assert ClipTransform().preprocess_id == ClipTransform().preprocess_id
    assert ClipTransform().preprocess_id != ClipTransform(image_size=336, crop_size=336).preprocess_id
    assert ClipTransform().preprocess_id != ClipTransform(crop_offset="round").preprocess_id
