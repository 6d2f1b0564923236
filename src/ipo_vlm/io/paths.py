"""Where caches live, and the one check every user-given output location goes through.

Everything content-addressed goes under one cache dir: ``$IPO_CACHE_DIR`` if set, else the
platform's user cache dir (``~/.cache/ipo-vlm`` on Linux). Nothing is created at import time."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ipo_vlm.errors import ConfigError


def default_cache_root() -> Path:
    """The platform's user cache dir for ipo-vlm, whatever ``IPO_CACHE_DIR`` says. Without a home
    directory (``HOME`` unset under a user id that has no passwd entry, as in ``docker run -u N``)
    there is none: a ``ConfigError`` says which variable to set, instead of a folder named ``~``."""
    from platformdirs import user_cache_dir

    if not os.environ.get("XDG_CACHE_HOME") and not os.path.isabs(os.path.expanduser("~")):
        uid = getattr(os, "getuid", lambda: "?")()
        raise ConfigError(f"no home directory for the cache: HOME is not set and user id {uid} has no passwd entry; "
                          f"set IPO_CACHE_DIR (or HOME) to a writable folder")

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


#: what a run directory (or a benchmark directory) records; an output path must never be one of them
RECORD_NAMES = frozenset({
    "config.json", "split.json", "history.jsonl", "steps.jsonl", "llm_calls.jsonl", "descriptions.jsonl",
    "result.json", "resumes.jsonl", "explain.json", "control", "tracking.json", "cells.jsonl", "grid.json", "grid.yaml", "transfer.jsonl",
})
_RECORD_MARKERS = ("config.json", "cells.jsonl")


def holds_records(folder: Path) -> bool:
    """True for a run directory (``config.json``) or a benchmark directory (``cells.jsonl``)."""
    return any((folder / m).is_file() for m in _RECORD_MARKERS)


def check_output_path(path: str | Path, what: str, *, data_root: str | Path | None = None,
                      inputs: tuple[str | Path, ...] = ()) -> Path:
    """The one check every user-given output location goes through before anything is written:
    it must not be (or be inside) a record of a run or benchmark directory, must not lie inside the
    dataset (``data_root``: it would become part of it) and must not overwrite one of ``inputs``.
    A ``ConfigError`` of one line starting with ``what`` otherwise."""
    path = Path(path).expanduser()
    resolved = path.resolve()
    for folder in list(resolved.parents)[:4]:
        if holds_records(folder):
            first = resolved.relative_to(folder).parts[0]
            existing_record = (folder / first).suffix in (".json", ".jsonl") and (folder / first).exists()
            if first in RECORD_NAMES or existing_record:
                raise ConfigError(f"{what} {path} is {folder}'s own {first}: writing there would destroy its records; "
                                  f"choose a file outside it (or another name)")
    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if resolved == root or root in resolved.parents:
            raise ConfigError(f"{what} {path} is inside the dataset folder {root}: it would become part of the data; "
                              f"choose a place outside it")
    for given in inputs:
        source = Path(given).expanduser().resolve()
        if resolved == source or (source.is_dir() and source in resolved.parents and resolved.exists()):
            raise ConfigError(f"{what} {path} is one of the inputs ({given}): writing it would destroy it")
    return path
