"""Token estimates for ``--dry-run`` and budgets, before any model is called."""

from __future__ import annotations

import math
from typing import Any


def estimate_tokens(text: str, llm: Any = None) -> int:
    """Tokens in ``text``: the backend's own tokenizer when it offers ``count_tokens``, else
    ``ceil(chars / 4)``, the usual rule of thumb for English with BPE vocabularies."""
    counter = getattr(llm, "count_tokens", None)
    if callable(counter):
        try:
            return int(counter(text))
        except Exception:  # a tokenizer that is not loaded yet must not break a dry run
            pass
    return math.ceil(len(text) / 4) if text else 0


def estimate_request_tokens(messages: tuple[tuple[str, str], ...] | list[tuple[str, str]], llm: Any = None) -> int:
    """Prompt tokens of a chat request; adds a few tokens per message for the chat template."""
    return sum(estimate_tokens(content, llm) + 4 for _, content in messages)
