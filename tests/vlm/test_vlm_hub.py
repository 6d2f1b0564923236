"""``hf:<hub id>`` without network: a cached model loads with no network call; an uncached one
fails at once with one line instead of the hub client's retries. Real processes, so that the
Hugging Face settings are read from a fresh environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import ipo_vlm

SRC = str(Path(ipo_vlm.__file__).resolve().parents[1])
CODE = "from ipo_vlm.vlm import create_vlm; print(create_vlm(sys.argv[1]).model_id)"


def _run(spec: str, hf_home: Path) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") and "PROXY" not in k.upper()}
    # port 9 on loopback refuses connections: a hub that cannot be reached, without the internet
    env.update(PYTHONPATH=SRC, HF_HOME=str(hf_home), HF_ENDPOINT="http://127.0.0.1:9")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", "import sys\n" + CODE.replace("; ", "\n"), spec], env=env,
                          capture_output=True, text=True, timeout=120)
    return proc, time.perf_counter() - start


def _script_error(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.strip().splitlines()[-1]


def test_uncached_hub_id_without_network_fails_fast_with_one_reason(tmp_path: Path) -> None:
    proc, seconds = _run("hf:nobody/no-such-clip", tmp_path / "hf")
    assert proc.returncode != 0
    assert "BackendError: 'nobody/no-such-clip' is not in the Hugging Face cache and http://127.0.0.1:9 cannot be reached" in _script_error(proc)
    assert "Retrying" not in proc.stderr and "thrown while requesting" not in proc.stderr
    assert seconds < 15  # process start and imports; the hub's retries took ~25 s


def test_cached_hub_id_loads_without_network(tmp_path: Path) -> None:
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip")
    repo = tmp_path / "hf" / "hub" / "models--someone--tiny-clip"
    shutil.copytree(clip, repo / "snapshots" / "0123abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    proc, _ = _run("hf:someone/tiny-clip", tmp_path / "hf")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("hf:someone/tiny-clip@")
    assert "127.0.0.1:9" not in proc.stderr
