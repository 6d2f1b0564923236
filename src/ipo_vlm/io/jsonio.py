"""Crash-safe files: atomic JSON writes (write, fsync, rename) and append-only JSON lines.

A run may be killed at any instant (``kill -9``); readers therefore tolerate a torn last line
of a ``.jsonl`` file and never see a half-written ``.json`` file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any



def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the file the mode an ordinary write would (one policy
        # for every run file, atomic or appended), or keep the mode of the file it replaces
        os.fchmod(fd, _mode_for(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_json(path: str | Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: str | Path, record: dict[str, Any], fsync: bool = True) -> None:
    """Append one record as one line and make it durable before returning."""
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Records of a ``.jsonl`` file; a torn final line (a crash mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                return  # torn tail from a crash; the record was never complete
            raise


def repair_jsonl(path: str | Path) -> int:
    """Drop a torn final line so later appends start on a fresh line. Returns records kept."""
    path = Path(path)
    if not path.exists():
        return 0
    records = list(read_jsonl(path))
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n") or len(records) != sum(1 for l in raw.splitlines() if l.strip()):
        atomic_write_bytes(path, "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records).encode())
    return len(records)
