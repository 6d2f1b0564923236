"""Connection settings shared by every OpenAI-compatible backend (LLM and captioner).

The key comes only from ``OPENAI_API_KEY`` and the server from ``OPENAI_BASE_URL`` (vLLM,
Ollama, llama.cpp server, LM Studio, gateways). The key is never logged, recorded or hashed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ipo_vlm.errors import BackendError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def check_base_url(url: str) -> str:
    """``OPENAI_BASE_URL`` as given, once it is an http(s) URL with a host; a one-line
    ``BackendError`` naming the variable otherwise (not a later "cannot reach the server")."""
    from urllib.parse import urlsplit

    shown = url if len(url) <= 80 else url[:77] + "..."
    parts = urlsplit(url.strip())
    if url != url.strip():
        raise BackendError(f"OPENAI_BASE_URL {shown!r} has spaces or a line break around it; remove them")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"OPENAI_BASE_URL {shown!r} is not an http:// or https:// URL (e.g. http://localhost:8000/v1)")
    return url


def check_api_key(key: str) -> str:
    """``OPENAI_API_KEY`` once it can be sent in an HTTP header: printable ASCII without spaces
    (a key pasted with a typographic character or a Windows line end is named here, not in a
    traceback of the HTTP library). The key itself is never shown."""
    bad = next((c for c in key if not (33 <= ord(c) <= 126)), None)
    if bad is not None:
        what = {"\r": "a carriage return (\\r)", "\n": "a line break", " ": "a space", "\t": "a tab"}.get(
            bad, f"the non-ASCII character U+{ord(bad):04X}" if ord(bad) > 126 else f"the control character U+{ord(bad):04X}")
        raise BackendError(f"OPENAI_API_KEY contains {what} at position {key.index(bad) + 1}; set it to the key alone")
    return key


@dataclass(frozen=True)
class OpenAISettings:
    base_url: str
    timeout_s: float = 60.0
    max_retries: int = 4

    @classmethod
    def from_env(cls, timeout_s: float = 60.0, max_retries: int = 4) -> "OpenAISettings":
        return cls(base_url=check_base_url(os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL),
                   timeout_s=timeout_s, max_retries=max_retries)

    def api_key(self) -> str:
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            return check_api_key(key)
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
