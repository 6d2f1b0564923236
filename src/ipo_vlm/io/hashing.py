"""Content hashes: of canonical JSON (cache keys), of whole files, and cheap fingerprints of
checkpoint files too large to read whole."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20
#: files up to this size are hashed whole by ``update_with_file_sample``
_WHOLE_BELOW = 8 << 20
_SAMPLE = 4 << 20


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace: the form that cache keys hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Streaming sha256 hex of a file's bytes (``OSError`` propagates: callers say what the file was)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def update_with_file_sample(h: Any, path: str | Path) -> None:
    """Feed ``h`` a file's size and its bytes: the whole file below 8 MiB, else the first and
    last 4 MiB, which hold a checkpoint's header and tensor data that differ between any two
    trainings, without reading gigabytes."""
    size = Path(path).stat().st_size
    h.update(f"{size}\n".encode())
    with open(path, "rb") as f:
        if size <= _WHOLE_BELOW:
            h.update(f.read())
        else:
            h.update(f.read(_SAMPLE))
            f.seek(size - _SAMPLE)
            h.update(f.read())


def file_fingerprint(*paths: str | Path) -> str:
    """A short (12 hex) identity of one or more checkpoint files, named and sampled."""
    h = hashlib.sha256()
    for p in paths:
        h.update(f"{Path(p).name}:".encode())
        update_with_file_sample(h, p)
    return h.hexdigest()[:12]
