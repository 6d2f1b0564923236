"""One file-permission policy: atomically written files get the mode an appended file gets."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ipo_vlm.io.jsonio import append_jsonl, atomic_write_json


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_and_appended_files_share_the_umask_mode(tmp_path: Path, umask: int, expected: int) -> None:
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "config.json", {"a": 1})
        append_jsonl(tmp_path / "history.jsonl", {"a": 1})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "config.json") == _mode(tmp_path / "history.jsonl") == expected


def test_replacing_a_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_json(target, {"v": 1})
    target.chmod(0o640)
    atomic_write_json(target, {"v": 2})
    assert _mode(target) == 0o640 and '"v": 2' in target.read_text()
