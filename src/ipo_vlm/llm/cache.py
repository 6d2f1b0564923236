"""Content-addressed cache of LLM responses (SQLite under ``cache_dir("llm")``).

The key is the sha256 of the canonical JSON of ``request.cache_payload(model_id)``: messages,
every sampling parameter, the sample index, the constraint and the model id. API keys are never
part of a request or a model id, so they never reach the key or the stored value."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.llm.base import LLMRequest, LLMResponse

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _init_shared(db: sqlite3.Connection, attempts: int = 60) -> None:
    """WAL mode and the table, safe while other processes open the same file.

    Switching to WAL answers "database is locked" at once, without waiting on the busy
    timeout, when another process opens or switches the file at that moment; the mode is
    persistent, so it is set only when missing, and the attempt repeated (bounded) on busy."""
    for attempt in range(attempts):
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            db.commit()
            return
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", sqlite3.SQLITE_BUSY) != sqlite3.SQLITE_BUSY or attempt == attempts - 1:
                raise
            time.sleep(0.01 + 0.01 * (attempt % 10))


def request_key(request: LLMRequest, model_id: str) -> str:
    """The cache key of ``request`` sent to ``model_id``."""
    return sha256_json(request.cache_payload(model_id))


class ResponseCache:
    """Thread-safe get/put of successful responses; one SQLite file shared by all runs."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            from ipo_vlm.io.paths import cache_dir

            path = cache_dir("llm") / "responses.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared by threads behind a lock; WAL lets other processes read meanwhile.
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30.0)
        with self._lock:
            _init_shared(self._db)

    def get(self, request: LLMRequest, model_id: str) -> LLMResponse | None:
        """The stored response for this exact request, marked as a hit, or ``None``."""
        key = request_key(request, model_id)
        with self._lock:
            row = self._db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return LLMResponse(
            text=value["text"],
            model=value.get("model", model_id),
            tokens_in=0,
            tokens_out=0,
            latency_s=0.0,
            cache_hit=True,
            extra={"cached_tokens_in": value.get("tokens_in", 0), "cached_tokens_out": value.get("tokens_out", 0)},
        )

    def put(self, request: LLMRequest, model_id: str, response: LLMResponse) -> None:
        """Store a successful response (last writer wins for the same key)."""
        key = request_key(request, model_id)
        value = {
            "text": response.text,
            "model": response.model,
            "tokens_in": response.tokens_in,
            "tokens_out": response.tokens_out,
        }
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model_id, json.dumps(value, ensure_ascii=False), time.time()),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
