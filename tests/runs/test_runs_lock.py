"""One writer per run directory: a second `ipo optimize` on the same --out is refused while the
first runs, and a writer killed with SIGKILL never blocks the next --resume. Real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ipo_vlm
from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.lock import RunLock

SRC = str(Path(ipo_vlm.__file__).resolve().parents[1])
POOL = [f"a {a} {n} of a <CLASS>." for a in ("bright", "dark", "small", "large", "worn", "clean") for n in ("photo", "picture")]


def test_second_lock_in_the_same_process_is_refused_and_names_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run"):
        with pytest.raises(ConfigError) as e:
            RunLock(tmp_path / "run").acquire()
    msg = str(e.value)
    assert f"pid {os.getpid()} on {socket.gethostname()} since " in msg and "\n" not in msg
    with RunLock(tmp_path / "run"):  # released: the next writer gets it
        pass


def test_lock_on_a_path_under_a_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="under .*afile, which is a file"):
        RunLock(tmp_path / "afile" / "run").acquire()


def _cli(*args: str, cache: Path) -> list[str]:
    return [sys.executable, "-m", "ipo_vlm.cli.main", *args]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "IPO_CACHE_DIR": str(cache)}


@pytest.fixture
def slow_run(tmp_path: Path):
    script = tmp_path / "slow.json"
    answers = ["\n".join(f"{k + 1}. {POOL[(i + k) % len(POOL)]}" for k in range(3)) for i in range(12)]
    script.write_text(json.dumps({"responses": answers, "delay_s": 1.5}))
    out, cache = tmp_path / "run", tmp_path / "cache"
    args = ["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "none",
            "--steps", "6", "--candidates", "3", "--no-cache", "--out", str(out)]
    return out, cache, args


def _start_and_wait_for_first_step(out: Path, cache: Path, args: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(_cli(*args, cache=cache), env=_env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if (out / "steps.jsonl").exists() and (out / "steps.jsonl").read_text().count("\n") >= 2:
            return proc
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the first run never reached step 1: {proc.stderr.read() if proc.stderr else ''}")


def test_second_writer_is_refused_while_the_first_runs_then_kill_9_does_not_block_resume(slow_run) -> None:
    out, cache, args = slow_run
    first = _start_and_wait_for_first_step(out, cache, args)
    try:
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == first.pid
        for second_args in (args + ["--resume"], args):  # a resume and a fresh run on the same --out
            second = subprocess.run(_cli(*second_args, cache=cache), env=_env(cache), capture_output=True, text=True, timeout=120)
            err = [line for line in second.stderr.splitlines() if line.strip()]
            assert second.returncode == 2, second.stderr
            assert len(err) == 1 and err[0].startswith("ipo: error: ")
            assert f"is being written by pid {first.pid} on {socket.gethostname()} since " in err[0]
        assert first.poll() is None, "the first run must still be running while the others are refused"
        lines_before_kill = (out / "history.jsonl").read_text().count("\n")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert not (out / "result.json").exists()
    # the refused processes wrote nothing: every step is recorded once
    steps = [json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines() if line.strip()]
    assert len(steps) == len(set(steps))
    assert lines_before_kill >= 2
    resumed = subprocess.run(_cli(*args, "--resume", cache=cache), env=_env(cache), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["complete"] is True and result["steps_done"] == 6
    steps = [json.loads(line)["step"] for line in (out / "steps.jsonl").read_text().splitlines() if line.strip()]
    assert steps == list(range(7))
