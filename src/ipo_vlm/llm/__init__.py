"""LLM backends. ``create_llm("openai:gpt-4o-mini")``, ``create_llm("local")``."""

from __future__ import annotations

from typing import Any

from ipo_vlm.llm.base import LLM, LLMRequest, LLMResponse, OutputConstraint
from ipo_vlm.registry import Registry

LLMS: Registry[LLM] = Registry("llm", noun="LLM")
LLMS.register("openai", "ipo_vlm.llm.openai_backend:load_openai", "any OpenAI-compatible chat API (OPENAI_API_KEY, OPENAI_BASE_URL)")
LLMS.register("llamacpp", "ipo_vlm.llm.llamacpp:load_llamacpp", "a local GGUF file through llama-cpp-python (extra: local)")
LLMS.register("local", "ipo_vlm.llm.llamacpp:load_local", "offline default: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (extra: local)")
LLMS.register("scripted", "ipo_vlm.testing.scripted:load_scripted", "replays canned answers from a JSON file (tests, demos)")


def create_llm(spec: str, **options: Any) -> LLM:
    return LLMS.create(spec, **options)


__all__ = ["LLM", "LLMS", "LLMRequest", "LLMResponse", "OutputConstraint", "create_llm"]
