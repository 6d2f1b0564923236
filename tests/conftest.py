"""Shared test set-up: every test session gets its own empty cache dir, so tests never read or
write the user's caches. The assembled local LLM is the one exception: it is 1.1 GB, built once
by `make model`, and found through IPO_MODEL_DIR."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_original_cache = os.environ.get("IPO_CACHE_DIR")
if "IPO_MODEL_DIR" not in os.environ:
    if _original_cache:
        os.environ["IPO_MODEL_DIR"] = str(Path(_original_cache) / "models")
    else:
        from platformdirs import user_cache_dir

        os.environ["IPO_MODEL_DIR"] = str(Path(user_cache_dir("ipo-vlm", appauthor=False)) / "models")

_session_cache = tempfile.mkdtemp(prefix="ipo-test-cache-")
os.environ["IPO_CACHE_DIR"] = _session_cache
# Nothing in the suite may reach the network, the HF hub included.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.pop("OPENAI_API_KEY", None)
os.environ.pop("OPENAI_BASE_URL", None)
