"""Runs share one cache dir by design: two real processes writing the LLM response cache, the
caption cache and the feature store at once lose nothing and never get each other's answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ipo_vlm
from ipo_vlm.captioner.cache import CaptionCache
from ipo_vlm.llm.base import LLMRequest
from ipo_vlm.llm.cache import ResponseCache

SRC = str(Path(ipo_vlm.__file__).resolve().parents[1])
N = 150

# Each process opens a fresh connection per entry (process start-up races included), writes an
# answer under its own model id for the SAME requests as the other process, and reads it back.
_WRITER = """
import sys, time
from pathlib import Path
tag, go = sys.argv[1], Path(sys.argv[2])
from ipo_vlm.captioner.cache import CaptionCache
from ipo_vlm.llm.base import LLMRequest, LLMResponse
from ipo_vlm.llm.cache import ResponseCache
from ipo_vlm.io.paths import cache_dir
while not go.exists():
    time.sleep(0.001)
for i in range(int(sys.argv[3])):
    cache = ResponseCache()
    req = LLMRequest(messages=(("user", f"question {i}"),), temperature=1.0, max_tokens=16, seed=i)
    cache.put(req, f"model-{tag}", LLMResponse(text=f"{tag} answers {i}", model=f"model-{tag}", tokens_in=1, tokens_out=1))
    got = cache.get(req, f"model-{tag}")
    assert got is not None and got.text == f"{tag} answers {i}", (i, got)
    cache.close()
    captions = CaptionCache(cache_dir("captions"))
    captions.put(f"{tag}-{i:04d}".ljust(64, "0"), f"{tag} sees {i}", "captioner", "image")
    captions.put("shared".ljust(64, "0"), "the same text from both", "captioner", "image")
    assert captions.get(f"{tag}-{i:04d}".ljust(64, "0")) == f"{tag} sees {i}"
"""


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC, "IPO_CACHE_DIR": str(cache)}


def test_two_processes_fill_the_response_and_caption_caches_at_once(tmp_path: Path) -> None:
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, tag, str(go), str(N)], env=_env(cache),
                              stderr=subprocess.PIPE, text=True) for tag in "AB"]
    time.sleep(1.0)  # both imported and waiting, so their writes overlap
    go.touch()
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    responses = ResponseCache(cache / "llm" / "responses.sqlite")
    assert len(responses) == 2 * N
    for i in range(N):
        req = LLMRequest(messages=(("user", f"question {i}"),), temperature=1.0, max_tokens=16, seed=i)
        for tag in "AB":
            assert responses.get(req, f"model-{tag}").text == f"{tag} answers {i}"
    captions = CaptionCache(cache / "captions")
    assert all(captions.get(f"{tag}-{i:04d}".ljust(64, "0")) == f"{tag} sees {i}" for tag in "AB" for i in range(N))
    assert not list((cache / "captions").rglob("*.tmp"))  # no half-written entry left behind


@pytest.mark.slow  # two whole runs side by side on 2 cores: about a minute
def test_two_runs_share_a_cold_cache_and_each_gets_its_own_answers(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    words = {"A": ["amber", "azure", "ashen", "arctic"], "B": ["bronze", "beige", "bleak", "bold"]}
    procs = {}
    for tag, pool in words.items():
        script = tmp_path / f"{tag}.json"
        script.write_text(json.dumps({"responses": [f"1. a {w} photo of a <CLASS>.\n2. a {w} picture of the <CLASS>." for w in pool]}))
        args = ["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "interrogate",
                "--steps", "3", "--candidates", "2", "--out", str(tmp_path / tag)]
        procs[tag] = subprocess.Popen([sys.executable, "-m", "ipo_vlm.cli.main", *args], env=_env(cache),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors = {tag: p.communicate(timeout=600)[1] for tag, p in procs.items()}
    assert {tag: p.returncode for tag, p in procs.items()} == {"A": 0, "B": 0}, errors
    histories = {tag: [json.loads(line) for line in (tmp_path / tag / "history.jsonl").read_text().splitlines()] for tag in words}
    for tag, other in (("A", "B"), ("B", "A")):
        proposed = " ".join(r["template"] for r in histories[tag] if r["source"] == "llm")
        assert any(w in proposed for w in words[tag])
        assert not any(w in proposed for w in words[other]), f"run {tag} got run {other}'s answers"
    # the same images through one shared feature store score the seeds identically in both runs
    seeds = {tag: [(r["template"], r["train_acc"], r["train_loss"]) for r in h if r["source"] == "seed"] for tag, h in histories.items()}
    assert seeds["A"] == seeds["B"]
    descriptions = {tag: (tmp_path / tag / "descriptions.jsonl").read_text() for tag in words}
    assert descriptions["A"] == descriptions["B"] and descriptions["A"].strip()
