"""Connection settings shared by every OpenAI-compatible backend (LLM and captioner).

The key comes only from ``OPENAI_API_KEY`` and the server from ``OPENAI_BASE_URL`` (vLLM,
Ollama, llama.cpp server, LM Studio, gateways). The key is never logged, recorded or hashed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ipo_vlm.errors import BackendError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class OpenAISettings:
    base_url: str
    timeout_s: float = 60.0
    max_retries: int = 4

    @classmethod
    def from_env(cls, timeout_s: float = 60.0, max_retries: int = 4) -> "OpenAISettings":
        return cls(base_url=os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL, timeout_s=timeout_s, max_retries=max_retries)

    def api_key(self) -> str:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return key
        if self.base_url.rstrip("/") != DEFAULT_BASE_URL:
            # Local servers (vLLM, Ollama, llama.cpp) usually accept any key.
            return "not-needed"
        raise BackendError("OPENAI_API_KEY is not set (or set OPENAI_BASE_URL to a local OpenAI-compatible server)")

    def public_base_url(self) -> str:
        """The base URL without credentials, query or fragment: safe in ids, records, messages
        and cache keys."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by ``***`` (some servers echo the request back)."""
        try:
            key = self.api_key()
        except BackendError:
            return text
        return text.replace(key, "***") if len(key) >= 4 else text

    def client(self) -> Any:
        """An ``openai.OpenAI`` client. Retries are ours (bounded, honouring Retry-After), so the
        SDK's own are switched off."""
        try:
            import openai
        except ImportError:
            raise BackendError("the openai package is not installed: pip install 'openai>=3.57,<4'") from None
        return openai.OpenAI(api_key=self.api_key(), base_url=self.base_url, timeout=self.timeout_s, max_retries=0)
