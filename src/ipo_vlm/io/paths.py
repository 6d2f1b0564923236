"""Where caches live, and the one check every user-given output location goes through.

Everything content-addressed goes under one cache dir: ``$IPO_CACHE_DIR`` if set, else the
platform's user cache dir (``~/.cache/ipo-vlm`` on Linux). Nothing is created at import time."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ipo_vlm.errors import ConfigError


def default_cache_root() -> Path:
    """The platform's user cache dir for ipo-vlm, whatever ``IPO_CACHE_DIR`` says."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ipo-vlm", appauthor=False))


def cache_root() -> tuple[Path, str]:
    """The cache root and what names it (for error lines): ``IPO_CACHE_DIR`` or the default."""
    env = os.environ.get("IPO_CACHE_DIR")
    if env:
        return Path(env).expanduser(), "IPO_CACHE_DIR"
    return default_cache_root(), "cache dir"


def cache_dir(sub: str | None = None, create: bool = True) -> Path:
    root, what = cache_root()
    path = root / sub if sub else root
    if create:
        ensure_writable_dir(path, what)
    return path


def ensure_writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` (with its parents) as a directory this process can write files into.

    Anything in the way — a regular file at the path or at one of its parents, a read-only or
    virtual file system (``/proc``) — is a ``ConfigError`` of one line that starts with ``what``
    (the flag or variable the user set), never an ``OSError`` traceback."""
    path = check_creatable_dir(path, what)
    try:
        path.mkdir(parents=True, exist_ok=True)
        _probe(path)
    except OSError as e:
        raise ConfigError(f"{what} {path} cannot be created or written: {e.strerror or e}") from None
    return path


def check_creatable_dir(path: str | Path, what: str) -> Path:
    """:func:`ensure_writable_dir`'s checks without creating anything: the nearest existing
    folder at or above ``path`` must be a directory that takes files."""
    path = Path(path).expanduser()
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                where = "is a file" if p == path else f"is under {p}, which is a file"
                raise ConfigError(f"{what} {path} {where}, not a directory")
            try:
                _probe(p)
            except OSError as e:
                raise ConfigError(f"{what} {path} cannot be created or written: {e.strerror or e}") from None
            break
    return path


def _probe(directory: Path) -> None:
    # creating a file is the only test that also holds for root and for /proc-like mounts
    with tempfile.TemporaryFile(dir=directory, prefix=".ipo-probe-"):
        pass


def ensure_writable_file(path: str | Path, what: str) -> Path:
    """Check that a file can be written at ``path`` (its folder is created if needed)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a directory, not a file")
    ensure_writable_dir(path.parent, what)
    return path
