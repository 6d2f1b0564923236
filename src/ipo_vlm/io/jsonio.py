"""Crash-safe files: atomic JSON writes (write, fsync, rename) and append-only JSON lines.

A run may be killed at any instant (``kill -9``); readers therefore tolerate a torn last line
of a ``.jsonl`` file and never see a half-written ``.json`` file. Also: a YAML or JSON settings
file read as one mapping, each problem one ``ConfigError``."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError

log = logging.getLogger(__name__)


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
    """Records (JSON objects) of a ``.jsonl`` file. A torn final line (a crash mid-write) is
    skipped silently; any other line that is not a JSON object (a hand edit, a disk error) is
    skipped with a warning that names the file and the line."""
    for _, record in numbered_jsonl(path):
        yield record


def numbered_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`read_jsonl`'s records with their line numbers (from 1), for warnings that name them."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1 and not line.endswith("\n"):
                return  # torn tail from a crash; the record was never complete
            record = None
        if isinstance(record, dict):
            yield i + 1, record
        else:
            warn_once(path, i + 1, "not a JSON object")


_warned: set[tuple[str, int]] = set()


def warn_once(path: Path, line: int, why: str) -> None:
    """Warn (once per process) that line ``line`` of ``path`` was skipped."""
    if (str(path), line) not in _warned:
        _warned.add((str(path), line))
        log.warning("skipped line %d of %s: %s", line, path, why)


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


def read_settings_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """A YAML or JSON settings file (``what``: its kind, for messages) as a dict; validated by
    whoever builds settings from it. ``.json`` is read as JSON, anything else as YAML."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read {what} {p}: {e.strerror}") from None
    try:
        if p.suffix == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text) or {}
    except Exception as e:  # yaml and json raise different types; both mean a broken file
        raise ConfigError(f"cannot parse {what} {p}: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {p} must hold a mapping")
    return raw
