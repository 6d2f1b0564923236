"""Where caches live. Everything content-addressed goes under one cache dir:
``$IPO_CACHE_DIR`` if set, else the platform's user cache dir (``~/.cache/ipo-vlm`` on Linux).
Nothing is created at import time."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(sub: str | None = None, create: bool = True) -> Path:
    env = os.environ.get("IPO_CACHE_DIR")
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("ipo-vlm", appauthor=False))
    path = root / sub if sub else root
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
