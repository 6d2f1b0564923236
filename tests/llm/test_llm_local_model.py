"""Assembling a chunked model file: atomic, verified, stamped; clear errors. Uses tiny fake parts."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from ipo_vlm.errors import BackendError
from ipo_vlm.llm import local_model
from ipo_vlm.llm.local_model import ModelFile, assemble, ensure_local_model, find_parts

CHUNKS = [b"GGUF" + bytes(range(i, i + 60)) for i in range(3)]


def fake_model(sha: str | None = None, size: int | None = None) -> ModelFile:
    blob = b"".join(CHUNKS)
    return ModelFile(
        filename="fake.gguf",
        package="fakemodel-part{i}",
        module="fakemodel_part{i}",
        chunk="data/part{i:02d}.bin",
        parts=len(CHUNKS),
        version="0.2.0",
        size=len(blob) if size is None else size,
        sha256=sha or hashlib.sha256(blob).hexdigest(),
    )


@pytest.fixture()
def parts_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    for i, chunk in enumerate(CHUNKS, start=1):
        pkg = site / f"fakemodel_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('parts must be found without importing them')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_assembles_verifies_and_stamps(parts_on_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models" / "fake.gguf"
    model = fake_model()
    assert ensure_local_model(model, dest) == dest
    assert dest.read_bytes() == b"".join(CHUNKS)
    assert (tmp_path / "models" / "fake.gguf.verified.json").is_file()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fake.gguf", "fake.gguf.verified.json"]


def test_second_call_is_fast_no_rehash(parts_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "fake.gguf"
    model = fake_model()
    ensure_local_model(model, dest)

    def forbidden(*_: object) -> None:
        raise AssertionError("must not hash or assemble again")

    monkeypatch.setattr(local_model, "sha256_file", forbidden)
    monkeypatch.setattr(local_model, "assemble", forbidden)
    assert ensure_local_model(model, dest) == dest


def test_changed_file_is_checked_again_and_rebuilt(parts_on_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "fake.gguf"
    model = fake_model()
    ensure_local_model(model, dest)
    data = bytearray(dest.read_bytes())
    data[10] ^= 0xFF  # same size, different content, newer mtime
    dest.write_bytes(bytes(data))
    os.utime(dest, ns=(dest.stat().st_atime_ns, dest.stat().st_mtime_ns + 5_000_000_000))
    ensure_local_model(model, dest)
    assert dest.read_bytes() == b"".join(CHUNKS)


def test_missing_part_names_the_package_to_install(parts_on_path: Path) -> None:
    (parts_on_path / "fakemodel_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(BackendError, match=r"pip install fakemodel-part2==0\.2\.0.*make model"):
        find_parts(fake_model())


def test_hash_mismatch_leaves_nothing_behind(parts_on_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "fake.gguf"
    with pytest.raises(BackendError, match="checksum"):
        ensure_local_model(fake_model(sha="0" * 64), dest)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_size_mismatch_is_an_error(parts_on_path: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="size 192, expected 7"):
        assemble(find_parts(fake_model()), tmp_path / "x.gguf", fake_model(size=7))


def test_real_model_parameters_match_the_published_file() -> None:
    m = local_model.QWEN_CODER_1_5B
    assert (m.parts, m.size, m.version) == (22, 1_117_320_768, "0.2.0")
    assert m.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert "fakemodel_part1" not in sys.modules


def test_one_model_file_whatever_the_cache_dir(parts_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IPO_CACHE_DIR changes where caches go, never where the model is: a second cache dir
    finds the first copy instead of assembling another."""
    monkeypatch.delenv("IPO_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model = fake_model()
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache1"))
    first = ensure_local_model(model)
    assert first == tmp_path / "xdg" / "ipo-vlm" / "models" / "fake.gguf"
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache2"))
    monkeypatch.setattr(local_model, "assemble", lambda *a: pytest.fail("assembled a second copy"))
    assert ensure_local_model(model) == first
    assert not (tmp_path / "cache1" / "models").exists() and not (tmp_path / "cache2" / "models").exists()


def test_a_copy_in_the_old_place_is_used(parts_on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IPO_MODEL_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    model = fake_model()
    old = ensure_local_model(model, tmp_path / "cache" / "models" / "fake.gguf")  # where older versions put it
    monkeypatch.setattr(local_model, "assemble", lambda *a: pytest.fail("assembled a second copy"))
    assert ensure_local_model(model) == old


def test_model_dir_that_is_a_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ipo_vlm.errors import ConfigError

    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("IPO_MODEL_DIR", str(tmp_path / "afile"))
    with pytest.raises(ConfigError, match="^IPO_MODEL_DIR .* is a file"):
        local_model.model_path(fake_model())
