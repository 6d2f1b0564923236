"""Content-addressed store of image descriptions.

One small JSON file per description, named by the sha256 of everything that changes the answer
(captioner id, image content id, instruction). Files are written atomically, so a crash leaves
either the whole entry or none, and concurrent runs at worst compute the same entry twice."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ipo_vlm.io.jsonio import atomic_write_json
from ipo_vlm.io.hashing import sha256_json

log = logging.getLogger(__name__)

#: bump when the stored entry's meaning changes; part of every key
CACHE_FORMAT = 1


def caption_key(model_id: str, content_id: str, instruction: str) -> str:
    """Cache key of one description. Holds no secrets: model ids never contain API keys."""
    return sha256_json({"format": CACHE_FORMAT, "model": model_id, "image": content_id, "instruction": instruction})


class CaptionCache:
    """Raw (unmasked) descriptions on disk under ``root``; masking depends on the run's classes
    and is applied afterwards, so one entry serves every class list."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> str | None:
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            # A damaged entry is recomputed, never trusted.
            log.warning("ignoring unreadable caption cache entry %s: %s", path, e)
            return None
        text = entry.get("text") if isinstance(entry, dict) else None
        return text if isinstance(text, str) else None

    def put(self, key: str, text: str, model_id: str, content_id: str) -> None:
        atomic_write_json(self._path(key), {"text": text, "model": model_id, "image": content_id})
