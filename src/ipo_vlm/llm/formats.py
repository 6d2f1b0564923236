"""Which ``response_format`` an OpenAI-compatible server takes, found out once per run.

Servers differ: OpenAI takes ``json_schema`` (structured outputs), llama.cpp's servers take
``json_object`` with a schema beside it and answer ``json_schema`` with an error, others take
only plain text. A backend starts at the format it is given (``auto``: the strictest) and, when
the server rejects it, steps down the chain ``json_schema -> json_object -> none`` at once,
without spending its retry budget on the same mistake. What worked is remembered per server and
model for the rest of the process, so a run pays for a rejected format at most once."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

#: formats in the order they are tried; ``none`` sends no response_format (the parser copes)
FORMAT_CHAIN = ("json_schema", "json_object", "none")
#: the default: start at the strictest format and step down on rejection
AUTO = "auto"

#: words that tell a rejection of the response_format apart from any other bad request
_FORMAT_WORDS = re.compile(r"response_format|json_schema|json_object|structured output|guided_json|response format", re.I)
#: HTTP statuses a server answers a format it does not take with (llama-cpp-python's server: 500)
_REJECTION_STATUSES = frozenset({400, 415, 422, 500, 501})
#: longest server reason kept in an error line or a record
MAX_REASON_CHARS = 300


def next_format(fmt: str) -> str | None:
    """The format to try after ``fmt`` was rejected, or None at the end of the chain."""
    i = FORMAT_CHAIN.index(fmt)
    return FORMAT_CHAIN[i + 1] if i + 1 < len(FORMAT_CHAIN) else None


def is_format_rejection(status: int, reason: str, fmt: str) -> bool:
    """Whether an error answer to a request sent with ``fmt`` rejects the format itself."""
    return fmt != "none" and status in _REJECTION_STATUSES and bool(_FORMAT_WORDS.search(reason))


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """A server's multi-line message as one line: lines joined with ``; ``, whitespace collapsed,
    links to documentation dropped, cut at ``limit`` characters."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    kept = [line for line in lines if line and not line.lower().startswith("for further information")]
    joined = "; ".join(kept)
    return joined if len(joined) <= limit else joined[: limit - 1].rstrip() + "…"


def server_reason(body: Any, fallback: str) -> str:
    """The reason a server gave in an error body (OpenAI ``{"error": {"message"}}``, FastAPI
    ``{"detail"}``, a bare string), as one line; ``fallback`` when there is none."""
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            body = json.loads(text)
        except ValueError:
            return one_line(text) if text.strip() else one_line(fallback)
    reason = _reason_of(body)
    return one_line(reason) if reason else one_line(fallback)


def _reason_of(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(filter(None, (_reason_of(item) for item in body[:5])))
    if not isinstance(body, dict):
        return ""
    for key in ("error", "detail", "message", "msg"):
        if key in body:
            inner = _reason_of(body[key])
            if inner:
                loc = body.get("loc")
                return f"{'.'.join(map(str, loc))}: {inner}" if isinstance(loc, list) and key == "msg" else inner
    return ""


@dataclass
class _Known:
    fmt: str
    confirmed: bool = False
    rejected: dict[str, str] = field(default_factory=dict)  # format -> the server's reason


class FormatMemory:
    """Process-wide: per ``(base URL, model)``, the format to send and whether a server accepted
    it. Until one is accepted, calls to that server go one at a time (``probe``), so parallel
    calls do not all pay for the same rejection."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], _Known] = {}
        self._lock = threading.Lock()
        self._probes: dict[tuple[str, str], threading.Lock] = {}

    def start(self, key: tuple[str, str], first: str) -> tuple[str, bool]:
        """The format to send (never stricter than ``first``) and whether it is confirmed."""
        with self._lock:
            known = self._known.get(key)
        if known is None:
            return first, False
        if FORMAT_CHAIN.index(first) > FORMAT_CHAIN.index(known.fmt):
            return first, False
        return known.fmt, known.confirmed

    def probe(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._probes.setdefault(key, threading.Lock())

    def rejected(self, key: tuple[str, str], fmt: str, reason: str) -> str | None:
        """Note a rejection; returns the next format to try (None: none left)."""
        nxt = next_format(fmt)
        with self._lock:
            known = self._known.setdefault(key, _Known(fmt))
            known.rejected[fmt] = reason
            if nxt is not None and FORMAT_CHAIN.index(nxt) > FORMAT_CHAIN.index(known.fmt):
                known.fmt, known.confirmed = nxt, False
        return nxt

    def accepted(self, key: tuple[str, str], fmt: str) -> None:
        with self._lock:
            known = self._known.setdefault(key, _Known(fmt))
            if FORMAT_CHAIN.index(fmt) >= FORMAT_CHAIN.index(known.fmt):
                known.fmt, known.confirmed = fmt, True

    def rejections(self, key: tuple[str, str]) -> dict[str, str]:
        with self._lock:
            known = self._known.get(key)
            return dict(known.rejected) if known else {}

    def clear(self) -> None:
        with self._lock:
            self._known.clear()
            self._probes.clear()


#: the one memory of this process (a run is one process; tests clear it)
FORMATS = FormatMemory()
