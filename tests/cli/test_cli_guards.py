"""The guards at the roots of a newcomer's mistakes, through the real command line on synthetic
runs (no model, no LLM): outputs that would overwrite a run's records or the dataset, hand-damaged
run files, OS errors and broken pipes at the error boundary, messages that would echo kilobytes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipo_vlm.cli import main as cli_main
from ipo_vlm.cli.main import main
from ipo_vlm.errors import ConfigError
from ipo_vlm.io.paths import check_output_path, default_cache_root
from ipo_vlm.testing.runs import synthetic_run

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    return synthetic_run(tmp_path / "run", steps=3)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("argv", [
    ["export", "{run}", "--out", "{run}/config.json"],
    ["report", "{run}", "--out", "{run}/result.json"],
    ["report", "{run}", "--out", "{run}/history.jsonl"],
    ["data", "--out", "{run}/split.json"],
    ["classify", "--run", "{run}", "{run}/x.png", "--csv", "{run}/history.jsonl"],
])
def test_an_output_path_that_is_a_record_of_a_run_is_refused_and_nothing_changes(run, argv, capsys):
    before = _digests(run)
    assert main([a.format(run=run) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "destroy its records" in err[0]
    assert _digests(run) == before


def test_the_guard_allows_a_new_file_beside_the_records_and_refuses_the_dataset_and_inputs(run, tmp_path):
    assert check_output_path(run / "report.html", "--out") == run / "report.html"
    assert check_output_path(tmp_path / "elsewhere.csv", "--csv") == tmp_path / "elsewhere.csv"
    with pytest.raises(ConfigError, match="control"):
        check_output_path(run / "control" / "history.jsonl", "--out")
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    with pytest.raises(ConfigError, match="inside the dataset folder"):
        check_output_path(tmp_path / "photos" / "myrun", "--out", data_root=tmp_path / "photos")
    (tmp_path / "photos" / "cat" / "1.png").write_bytes(b"png")
    with pytest.raises(ConfigError, match="one of the inputs"):
        check_output_path(tmp_path / "photos" / "cat" / "1.png", "--csv", inputs=(tmp_path / "photos",))


def test_hand_damaged_run_files_are_one_line_or_a_warning(run, capsys, caplog):
    (run / "result.json").write_text("[1, 2]")
    assert main(["export", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "result.json is not a run result" in err[0]
    (run / "result.json").unlink()
    lines = (run / "history.jsonl").read_text().splitlines(keepends=True)
    lines[1:1] = ["typed by hand }\n", '{"step": 1, "template": "a nan {}.", "train_acc": NaN, "train_loss": 1.0}\n']
    (run / "history.jsonl").write_text("".join(lines))
    assert main(["history", str(run), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "a nan {}." not in out and json.loads(out)
    assert "line 2 of" in caplog.text and "line 3 of" in caplog.text and "history.jsonl" in caplog.text


def test_os_errors_are_one_line_and_a_broken_pipe_is_quiet(monkeypatch, capsys):
    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/cache/features/seg-1.bin")

    monkeypatch.setattr("ipo_vlm.cli.history.run", full)
    assert main(["history", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ipo: error: cannot use /cache/features/seg-1.bin: No space left on device; free some space "
                   "(or point IPO_CACHE_DIR / --out elsewhere)"]


def _cli(*args: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-m", "ipo_vlm.cli.main", *args], env=env, stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120)


def test_stdout_closed_full_or_gone(run):
    closed = subprocess.run(["bash", "-c", 'exec "$@" >&-', "x", sys.executable, "-m", "ipo_vlm.cli.main", "history", str(run)],
                            env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0 and closed.stderr == ""
    with open("/dev/full", "w") as full:
        done = _cli("history", str(run), stdout=full)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "ipo: error: cannot read or write: No space left on device; free some space (or point IPO_CACHE_DIR / --out elsewhere)"]
    proc = subprocess.Popen([sys.executable, "-m", "ipo_vlm.cli.main", "history", str(run), "--top", "0"],
                            env={**os.environ, "PYTHONPATH": str(SRC)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone, as after `| head -0`
    assert proc.wait(timeout=120) == 141 and proc.stderr.read() == b""


def test_a_message_that_quotes_kilobytes_is_cut_to_one_line(capsys):
    assert main(["evaluate", "--dataset", "demo", "--vlm", "demo:fashion", "--template", "a photo " * 700]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and len(err[0]) <= cli_main.MAX_LINE + len("ipo: error: ") and " ... " in err[0]


def test_no_home_directory_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)  # as for a uid without a passwd entry
    with pytest.raises(ConfigError, match="HOME is not set.*set IPO_CACHE_DIR"):
        default_cache_root()


def test_a_misspelt_dataset_in_a_grid_names_itself(tmp_path, capsys):
    grid = tmp_path / "grid.yaml"
    grid.write_text("datasets: [demoo]\nshots: [1]\nseeds: [1]\nmethods: [handcrafted]\nvlm: demo:fashion\n")
    assert main(["benchmark", str(grid), "--out", str(tmp_path / "b"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset 'demoo'" in err[0]
