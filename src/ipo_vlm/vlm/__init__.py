"""Vision-language models. ``create_vlm("hf:openai/clip-vit-base-patch16")`` resolves a spec."""

from __future__ import annotations

from typing import Any

from ipo_vlm.registry import Registry
from ipo_vlm.vlm.base import VisionLanguageModel

VLMS: Registry[VisionLanguageModel] = Registry("vlm", noun="VLM")
VLMS.register("hf", "ipo_vlm.vlm.hf:load_hf", "transformers CLIP/SigLIP from a local dir or the HF cache")
VLMS.register("open_clip", "ipo_vlm.vlm.openclip:load_open_clip", "open_clip <arch>@<pretrained-or-path> (extra: openclip)")
VLMS.register("demo", "ipo_vlm.vlm.demo_models:load_demo", "offline stand-in VLMs for the Fashion-MNIST demo: fashion, fashion-shifted (not CLIP)")


def create_vlm(spec: str, **options: Any) -> VisionLanguageModel:
    return VLMS.create(spec, **options)


__all__ = ["VLMS", "VisionLanguageModel", "create_vlm"]
