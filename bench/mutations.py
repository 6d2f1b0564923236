"""Mutation check of the wiring: apply small, plausible defects to a copy of the package, one at
a time, run the fast test suite against the copy, and report which tests catch each one.

    .venv/bin/python bench/mutations.py            # all mutations (a few minutes)
    .venv/bin/python bench/mutations.py --only cache

A mutation is a name and one or more (original text, mutated text) pairs: the first pair whose
original occurs exactly once in the whole package is applied, wherever the module lives, so the
same table runs before and after modules move or a line is rewritten.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MUTATIONS: list[tuple[str, list[tuple[str, str]]]] = [
    # wiring between units
    ("masking gets no class names", [("classnames=list(ds.info.classnames),", "classnames=[],")]),
    ("descriptions left out of the meta-prompt", [
        ("config.optimize.candidates, descriptions,", "config.optimize.candidates, [],"),
        ("o.candidates, ctx.descriptions,", "o.candidates, [],"),
    ]),
    ("proposer built without the VLM's token check", [(", check=scoring.check)", ")"), (", check=ctx.task.check)", ")")]),
    ("cache key drops max_tokens and stop", [('payload["stop"] = list(self.stop)', 'payload.pop("stop"); payload.pop("max_tokens")')]),
    ("optimize never uses the response cache", [("if config.llm.use_cache:", "if False:")]),
    ("val scores never recorded", [
        ('rec["val_acc"], rec["val_loss"] = val[template]', "pass"),
        ("return [t.with_(val_accuracy=v.accuracy, val_loss=v.loss) for t, v in zip(train, val)]", "return train"),
    ]),
    # units
    ("memory keeps the worst first", [("self._ranked.sort(key=lambda pair: pair[0])", "self._ranked.sort(key=lambda pair: pair[0], reverse=True)")]),
    ("loss tie-break reversed", [("return (-accuracy, loss, entry.step, self._added)", "return (-accuracy, -loss, entry.step, self._added)")]),
    ("Retry-After ignored", [("if retry_after is not None:\n            # The server", "if False:\n            # The server")]),
]


def _find(src: Path, original: str) -> list[Path]:
    return [p for p in src.rglob("*.py") if original in p.read_text(encoding="utf-8")]


def _apply(src: Path, pairs: list[tuple[str, str]]) -> Path | None:
    for original, mutated in pairs:
        hits = _find(src, original)
        if len(hits) == 1 and hits[0].read_text(encoding="utf-8").count(original) == 1:
            text = hits[0].read_text(encoding="utf-8")
            hits[0].write_text(text.replace(original, mutated), encoding="utf-8")
            return hits[0]
    return None


def _run_suite(pkg_parent: Path, timeout: int, tests: list[str]) -> tuple[int, list[str], float]:
    env = dict(os.environ, PYTHONPATH=str(pkg_parent))
    paths = [str(ROOT / t) for t in tests] or [str(ROOT / "tests")]
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "--maxfail=4", "-rf", *paths]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    failed = re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)
    errors = re.findall(r"^ERROR (\S+)", proc.stdout, flags=re.M)
    return proc.returncode, failed + errors, time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run the mutations whose name contains this text")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--tests", nargs="*", default=[], help="test paths to run (default: the whole fast suite)")
    args = ap.parse_args()
    rows = []
    for name, pairs in MUTATIONS:
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="ipo-mut-") as tmp:
            copy = Path(tmp) / "src"
            shutil.copytree(ROOT / "src", copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            where = _apply(copy / "ipo_vlm", pairs)
            if where is None:
                rows.append((name, "NOT APPLIED (text not found exactly once)", ""))
                continue
            rc, caught, seconds = _run_suite(copy, args.timeout, args.tests)
            rel = where.relative_to(copy)
            verdict = "caught" if rc != 0 else "SURVIVED"
            rows.append((name, f"{verdict} ({rel}, {seconds:.0f} s)", ", ".join(caught[:3])))
        print(f"{rows[-1][0]}: {rows[-1][1]}", file=sys.stderr, flush=True)
    print("| mutation | result | caught by |\n|---|---|---|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    return 0 if all(r[1].startswith("caught") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
