"""The Hugging Face hub as a source of weights (``hf:`` VLMs and captioners).

A hub id is read from the local Hugging Face cache when it is there, without any network call.
When it is not, the hub is probed once with a short connect timeout before ``from_pretrained``
runs, so that a machine without network gets one clear line at once instead of the hub client's
retries (two dozen warnings over half a minute)."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from ipo_vlm.errors import BackendError

DEFAULT_ENDPOINT = "https://huggingface.co"
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def hub_offline() -> bool:
    """True when the environment forbids downloads (read at call time, not import time)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def in_hub_cache(repo_id: str, filename: str = "config.json") -> bool:
    """Whether ``repo_id``'s ``filename`` is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # a name the hub client rejects is simply not cached
        return False
    return isinstance(found, str)


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """One TCP connect to the hub endpoint. Behind a proxy the answer is left to the client."""
    if any(os.environ.get(v) for v in _PROXY_VARS):
        return True
    url = urlsplit(hub_endpoint())
    if not url.hostname:
        return True
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def hub_local_only(repo_id: str, missing: str) -> bool:
    """Whether to load ``repo_id`` with ``local_files_only``: yes when offline or cached.

    An uncached id with an unreachable hub is a ``BackendError``: ``missing`` (what to do) after
    the reason."""
    if hub_offline() or in_hub_cache(repo_id):
        return True
    if not hub_reachable():
        raise BackendError(f"{repo_id!r} is not in the Hugging Face cache and {hub_endpoint()} cannot be reached; {missing}")
    return False
