"""Output locations a user gives (--out, --cache-dir, IPO_CACHE_DIR) that are a file, under a
file or on a file system that takes no files end in one line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.errors import ConfigError
from ipo_vlm.io.paths import cache_dir, ensure_writable_dir, ensure_writable_file


@pytest.fixture
def afile(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("a regular file\n")
    return f


def test_ensure_writable_dir_names_what_is_in_the_way(afile: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--out .*afile is a file, not a directory$"):
        ensure_writable_dir(afile, "--out")
    with pytest.raises(ConfigError, match=r"^--out .*afile/a/b is under .*afile, which is a file"):
        ensure_writable_dir(afile / "a" / "b", "--out")
    with pytest.raises(ConfigError, match=r"^--out /proc/ipo-test cannot be created or written"):
        ensure_writable_dir("/proc/ipo-test", "--out")
    made = ensure_writable_dir(tmp_path / "new" / "deep", "--out")
    assert made.is_dir() and not list(made.iterdir())  # the write probe leaves nothing behind
    with pytest.raises(ConfigError, match="is a directory, not a file"):
        ensure_writable_file(tmp_path, "--out")


def test_cache_dir_that_is_a_file_is_a_config_error(afile: Path, monkeypatch) -> None:
    monkeypatch.setenv("IPO_CACHE_DIR", str(afile))
    with pytest.raises(ConfigError, match="^IPO_CACHE_DIR .* is a file"):
        cache_dir("features")
    monkeypatch.setenv("IPO_CACHE_DIR", str(afile / "sub"))
    with pytest.raises(ConfigError, match="^IPO_CACHE_DIR .* is under"):
        cache_dir()


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert err[0].startswith("ipo: error: ")
    return err[0]


@pytest.mark.parametrize("out", ["{afile}/x.json", "/proc/ipo-test/split.json", "{tmp}"])
def test_data_out_that_cannot_be_written(out: str, afile: Path, tmp_path: Path, capsys) -> None:
    assert main(["data", "--out", out.format(afile=afile, tmp=tmp_path)]) == 2
    assert "--out" in _one_error_line(capsys)


@pytest.mark.parametrize("flag", ["--cache-dir", "IPO_CACHE_DIR"])
def test_features_cache_dir_that_is_a_file(flag: str, afile: Path, monkeypatch, capsys) -> None:
    args = ["features", "--dataset", "demo", "--vlm", "demo:fashion", "--shots", "1"]
    if flag == "--cache-dir":
        args += ["--cache-dir", str(afile)]
    else:
        monkeypatch.setenv("IPO_CACHE_DIR", str(afile))
    assert main(args) == 2
    assert flag in _one_error_line(capsys)


def _optimize(out: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "script.json"
    script.write_text('["1. a photo of a <CLASS>."]')
    return ["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "none", "--steps", "1",
            "--out", out]


@pytest.mark.parametrize("out", ["{afile}/sub", "/proc/ipo-test", "{afile}"])
def test_optimize_out_that_cannot_be_written(out: str, afile: Path, tmp_path: Path, capsys) -> None:
    assert main(_optimize(out.format(afile=afile), tmp_path)) == 2
    assert "--out" in _one_error_line(capsys)


def test_optimize_with_a_cache_dir_that_is_a_file_touches_no_run_directory(afile: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("IPO_CACHE_DIR", str(afile))
    out = tmp_path / "run"
    assert main(_optimize(str(out), tmp_path)) == 2
    assert "IPO_CACHE_DIR" in _one_error_line(capsys)
    assert not out.exists()


def test_a_bad_out_is_reported_before_any_backend_loads(afile: Path, tmp_path: Path, capsys) -> None:
    args = _optimize(f"{afile}/sub", tmp_path)
    args[args.index("--llm") + 1] = "scripted:/no/such/script.json"  # would fail if it were loaded
    assert main(args) == 2
    assert "--out" in _one_error_line(capsys)
