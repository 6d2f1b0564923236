"""One writer per run directory.

``RunLock`` holds an exclusive ``fcntl.flock`` on ``RUNDIR/.lock`` for as long as a run writes
the directory. The kernel drops a flock when its process dies, however it dies (``kill -9``
included), so a stale lock file never blocks the next run: only a live holder does. The holder
writes its pid, host and start time into the file so that a refused process can name it.
Readers (evaluation, reports) take no lock: every run file is append-only or replaced atomically.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from ipo_vlm.errors import ConfigError

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(rundir): ...`` — exclusive writer access to ``rundir`` (created if needed).

    A second writer gets a ``ConfigError`` at once, naming the holder; it never waits."""

    def __init__(self, rundir: str | Path) -> None:
        self.rundir = Path(rundir)
        self.path = self.rundir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        from ipo_vlm.io.paths import ensure_writable_dir

        ensure_writable_dir(self.rundir, "--out")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read_holder(fd))
            os.close(fd)
            raise ConfigError(f"{self.rundir} is being written by {holder}; wait for it to finish or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a finished run leaves no holder behind
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, object]:
    try:
        raw = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        holder = json.loads(raw)
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder: dict[str, object]) -> str:
    if not holder.get("pid"):
        return "another process (it is starting)"
    return f"pid {holder['pid']} on {holder.get('host', '?')} since {holder.get('since', '?')}"
