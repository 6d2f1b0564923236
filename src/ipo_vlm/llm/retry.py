"""Bounded retries with exponential backoff that honour a server's ``Retry-After``.

A plain loop (never recursion). Jitter, when wanted, comes from a passed-in seeded
``random.Random`` so that the waits of a run are reproducible."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ipo_vlm.errors import LLMError, squeeze

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts after the first; waits the server's ``Retry-After`` when it
    sends one, else ``base_delay_s * 2**attempt`` (plus jitter); both capped at ``max_delay_s``."""

    max_retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    #: relative jitter added to computed backoffs (0 = none); never to a server's Retry-After
    jitter: float = 0.1
    #: waits at least this long are announced on stderr (a warning), shorter ones only logged
    announce_s: float = 3.0

    def backoff(self, attempt: int, retry_after: float | None, rng: random.Random | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after is not None:
            # The server knows its own load better than our schedule does (within our cap).
            return min(retry_after, self.max_delay_s)
        delay = self.base_delay_s * (2**attempt)
        if rng is not None and self.jitter > 0:
            delay *= 1.0 + rng.uniform(0.0, self.jitter)
        return min(delay, self.max_delay_s)


class Retryable(Exception):
    """Wraps a transient failure; ``retry_after`` is the server's requested wait in seconds."""

    def __init__(self, cause: Exception, retry_after: float | None = None) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry_after = retry_after


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (delta seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    rng: random.Random | None = None,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "call",
) -> T:
    """Run ``fn`` until it returns; retry when it raises ``Retryable``, at most
    ``policy.max_retries`` times. The last failure's cause is raised."""
    attempt = 0
    while True:
        try:
            return fn()
        except Retryable as r:
            if attempt >= policy.max_retries:
                raise r.cause from None
            if r.retry_after is not None and r.retry_after > policy.max_delay_s:
                # waiting that long would look like a hang; say so now instead
                raise LLMError(f"{what}: the server asks to wait {r.retry_after:.0f} s before trying again (Retry-After), "
                               f"more than the {policy.max_delay_s:.0f} s this client waits; try again later") from None
            delay = policy.backoff(attempt, r.retry_after, rng)
            level = logging.WARNING if delay >= policy.announce_s else logging.INFO
            log.log(level, "%s failed (%s); retry %d/%d in %.0f s", what, _short(r.cause), attempt + 1, policy.max_retries, delay)
            sleep(delay)
            attempt += 1


def _short(cause: Exception, limit: int = 160) -> str:
    return squeeze(cause, limit) or type(cause).__name__
