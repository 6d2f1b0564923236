"""Captioners describe few-shot training images for the meta-prompt."""

from __future__ import annotations

from typing import Any

from ipo_vlm.captioner.base import Captioner
from ipo_vlm.registry import Registry

CAPTIONERS: Registry[Captioner] = Registry("captioner", noun="captioner")
CAPTIONERS.register("openai", "ipo_vlm.captioner.openai_vision:load_openai_captioner", "vision chat through an OpenAI-compatible API")
CAPTIONERS.register("hf", "ipo_vlm.captioner.hf:load_hf_captioner", "a local transformers image-to-text model")
CAPTIONERS.register("interrogate", "ipo_vlm.captioner.interrogate:load_interrogate", "offline: ranks attribute phrases with the run's own VLM")
CAPTIONERS.register("none", "ipo_vlm.captioner.base:load_none", "skip image descriptions")


def create_captioner(spec: str, **options: Any) -> Captioner:
    return CAPTIONERS.create(spec, **options)


__all__ = ["CAPTIONERS", "Captioner", "create_captioner"]
