"""Run many user mistakes through the real ``ipo`` command line and count how each one ends.

Every case is a separate process (``python -m ipo_vlm.cli.main ...``) in a scratch directory
with its own ``IPO_CACHE_DIR`` and no API key, so nothing here needs a network or real weights.
A mistake should end with exit status 2 and exactly one line on stderr (stage lines such as
``ipo: encoding ...`` and progress bars are not counted as error lines); a case marked ``warn``
should succeed and print a warning; a case marked ``quiet`` (output to a reader that is gone) should
end without a word on stderr. A case that changes files it must not touch is "lost work", one that
doubles the ``ipo:`` prefix or echoes a line of over 400 characters "unclear".

    PYTHONPATH=src python scripts/bad_input_sweep.py            # table + counts
    PYTHONPATH=src python scripts/bad_input_sweep.py -v -k out  # only cases naming "out", with stderr
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bad_input_cases import cases2, setup2  # noqa: E402


@dataclass
class Case:
    name: str
    args: list[str]
    expect: str = "error"  # "error": exit 2 + one line; "warn": exit 0 + a warning line
    env: dict[str, str] | None = None
    must: str | None = None  # a regex the error (or warning) line must match: the right reason
    max_s: float | None = None  # slower than this counts as "slow"
    prep: Callable[[], None] | None = None  # run before the case (e.g. copy a run and damage it)
    guard: str | None = None  # a folder whose files must be unchanged afterwards ("lost work")
    user: int | None = None  # run as this uid (one without a passwd entry)
    stdout: str | None = None  # "closed-pipe" (reader gone), "closed" (no fd 1) or a file path


def _png(path: Path, shade: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, 255 - shade, shade // 2)).save(path)


def _folder_dataset(root: Path, classes: dict[str, int]) -> Path:
    for c, n in classes.items():
        for i in range(n):
            _png(root / c / f"{i}.png", (i * 37 + len(c) * 11) % 256)
    return root


def setup(tmp: Path) -> dict[str, str]:
    """Files the cases refer to, and one real finished run (demo data, scripted LLM)."""
    afile = tmp / "afile"
    afile.write_text("not a directory\n")
    pool = [f"a {a} photo of a <CLASS>." for a in ("bright", "dark", "small", "large", "worn", "clean")]
    script = tmp / "script.json"
    script.write_text(json.dumps({"responses": ["\n".join(f"{k + 1}. {pool[(i + k) % 6]}" for k in range(3)) for i in range(6)]}))
    files = {
        "bad.json": "{not json",
        "list.json": "[1, 2]",
        "unknown.json": json.dumps({"colour": "red"}),
        "steps_many.json": json.dumps({"optimize": {"steps": "many"}}),
        "temp_hot.json": json.dumps({"llm": {"temperature": "hot"}}),
        "opt5.json": json.dumps({"optimize": 5}),
        "steps_frac.json": json.dumps({"optimize": {"steps": 1.5}}),
        "bad.yaml": "optimize: [unclosed",
        "names_bad.txt": "onlyfolder\n",
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    _folder_dataset(tmp / "imgs", {"cat": 8, "dog": 8, "bird": 8, "fish": 8})
    _folder_dataset(tmp / "dupes", {"big_cat": 8, "big cat": 8, "dog": 8, "fish": 8})
    _folder_dataset(tmp / "notest" / "train", {"cat": 8, "dog": 8, "bird": 8, "fish": 8})
    _folder_dataset(tmp / "notest" / "test", {"cat": 3, "dog": 3, "fish": 3})
    _folder_dataset(tmp / "corrupt", {"cat": 8, "dog": 8, "bird": 8, "fish": 8})
    for p in sorted((tmp / "corrupt" / "cat").iterdir()):
        p.write_bytes(b"\x89PNG broken")
    (tmp / "empty").mkdir()
    (tmp / "names_dup.txt").write_text("cat feline\ndog feline\n")
    partial = tmp / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{broken")
    run = tmp / "run"
    env = _env(tmp)
    proc = subprocess.run(
        [sys.executable, "-m", "ipo_vlm.cli.main", "optimize", "--preset", "demo", "--llm", f"scripted:{script}",
         "--captioner", "none", "--steps", "1", "--candidates", "3", "--out", str(run)],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
    )
    if proc.returncode != 0:
        sys.exit(f"setup run failed:\n{proc.stderr}")
    s = {"afile": str(afile), "script": f"scripted:{script}", "run": str(run), "tmp": str(tmp)}
    return s | setup2(tmp, s, lambda args: _cli(tmp, args))


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a case: no API key, a scratch cache; ``""`` in ``extra`` removes a variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "IPO_"))}
    env["IPO_CACHE_DIR"] = str(tmp / "cache")
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


def _cli(tmp: Path, args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "ipo_vlm.cli.main", *args], cwd=tmp, env=_env(tmp),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        sys.exit(f"setup command {args[:2]} failed:\n{proc.stderr}")


def cases(s: dict[str, str]) -> list[Case]:
    t, afile, script, run = s["tmp"], s["afile"], s["script"], s["run"]
    opt = ["optimize", "--preset", "demo", "--llm", script, "--captioner", "none", "--steps", "1", "--candidates", "3"]
    ev = ["evaluate", "--dataset", "demo", "--vlm", "demo:fashion"]
    feat = ["features", "--dataset", "demo", "--vlm", "demo:fashion", "--shots", "1"]
    return [
        # optimize: output paths
        Case("optimize --out under a file", [*opt, "--out", f"{afile}/sub"]),
        Case("optimize --out is a file", [*opt, "--out", afile]),
        Case("optimize --out under /proc", [*opt, "--out", "/proc/ipo-x"]),
        Case("optimize IPO_CACHE_DIR is a file", [*opt, "--out", f"{t}/o1"], env={"IPO_CACHE_DIR": afile}),
        Case("optimize IPO_CACHE_DIR under a file", [*opt, "--out", f"{t}/o2"], env={"IPO_CACHE_DIR": f"{afile}/c"}),
        # optimize: backends
        Case("optimize unknown --vlm scheme", [*opt, "--vlm", "bogus:x", "--out", f"{t}/o3"]),
        Case("optimize --vlm hf: missing dir", [*opt, "--vlm", "hf:/no/such/clip", "--out", f"{t}/o4"]),
        Case("optimize --vlm hf: uncached hub id", [*opt, "--vlm", "hf:nobody/no-such-clip", "--out", f"{t}/o5"], max_s=10),
        Case("optimize --vlm hf:path?device=gpu9", [*opt, "--vlm", "hf:/no/such/clip?device=gpu9", "--out", f"{t}/o6"], must="device"),
        Case("optimize --vlm demo:fashion?bogus=1", [*opt, "--vlm", "demo:fashion?bogus=1", "--out", f"{t}/o7"], must="option .bogus"),
        Case("optimize --vlm demo:nosuch", [*opt, "--vlm", "demo:nosuch", "--out", f"{t}/o8"]),
        Case("optimize unknown --llm", [*opt, "--llm", "bogus", "--out", f"{t}/o9"]),
        Case("optimize --llm local?n_ctx=-5", [*opt, "--llm", "local?n_ctx=-5", "--out", f"{t}/o10"], must="n_ctx"),
        Case("optimize --llm local?bogus=1", [*opt, "--llm", "local?bogus=1", "--out", f"{t}/o11"], must="option .bogus"),
        Case("optimize --llm openai without key", [*opt, "--llm", "openai:gpt-4o-mini", "--out", f"{t}/o12"]),
        Case("optimize --llm scripted missing file", [*opt, "--llm", "scripted:/no/file.json", "--out", f"{t}/o13"]),
        Case("optimize --llm scripted bad json", [*opt, "--llm", f"scripted:{t}/bad.json", "--out", f"{t}/o14"]),
        Case("optimize --llm llamacpp missing gguf", [*opt, "--llm", "llamacpp:/no/model.gguf", "--out", f"{t}/o15"]),
        Case("optimize --llm scripted?delay_s=x", [*opt, "--llm", f"{script}?delay_s=x", "--out", f"{t}/o16"], must="delay_s"),
        Case("optimize unknown --captioner", [*opt, "--captioner", "bogus", "--out", f"{t}/o17"]),
        Case("optimize --captioner hf missing dir", [*opt, "--captioner", "hf:/no/such/model", "--out", f"{t}/o18"]),
        Case("optimize --captioner interrogate?x=1", [*opt, "--captioner", "interrogate?x=1", "--out", f"{t}/o19"], must="option .x"),
        Case("optimize --captioner none?x=1", [*opt, "--captioner", "none?x=1", "--out", f"{t}/o20"], must="option .x"),
        # optimize: data
        Case("optimize unknown --dataset", [*opt, "--dataset", "nosuch", "--out", f"{t}/o21"]),
        Case("optimize folder without --data-root", [*opt, "--dataset", "folder", "--out", f"{t}/o22"]),
        Case("optimize --data-root missing", [*opt, "--dataset", "folder", "--data-root", "/no/dir", "--out", f"{t}/o23"]),
        Case("optimize --data-root is a file", [*opt, "--dataset", "folder", "--data-root", afile, "--out", f"{t}/o24"]),
        Case("optimize --data-root empty", [*opt, "--dataset", "folder", "--data-root", f"{t}/empty", "--out", f"{t}/o25"]),
        Case("optimize duplicate class names", [*opt, "--dataset", f"{t}/dupes", "--shots", "2", "--out", f"{t}/o26"], must="big cat"),
        Case("optimize corrupt train images", [*opt, "--dataset", f"{t}/corrupt", "--shots", "2", "--out", f"{t}/o27"]),
        # optimize: settings
        Case("optimize --shots 0", [*opt, "--shots", "0", "--out", f"{t}/o28"]),
        Case("optimize --steps -1", [*opt, "--steps", "-1", "--out", f"{t}/o29"]),
        Case("optimize --candidates 0", [*opt, "--candidates", "0", "--out", f"{t}/o30"]),
        Case("optimize --memory-size 0", [*opt, "--memory-size", "0", "--out", f"{t}/o31"]),
        Case("optimize --max-llm-tokens 0", [*opt, "--max-llm-tokens", "0", "--out", f"{t}/o32"]),
        Case("optimize --steps abc", [*opt, "--steps", "abc", "--out", f"{t}/o33"]),
        Case("optimize --select-on bogus", [*opt, "--select-on", "bogus", "--out", f"{t}/o34"]),
        Case("optimize unknown flag", [*opt, "--stepz", "3", "--out", f"{t}/o35"]),
        Case("optimize unknown --preset", [*opt, "--preset", "bogus", "--out", f"{t}/o36"]),
        Case("optimize --config missing", [*opt, "--config", "/no/cfg.json", "--out", f"{t}/o37"]),
        Case("optimize --config bad json", [*opt, "--config", f"{t}/bad.json", "--out", f"{t}/o38"]),
        Case("optimize --config bad yaml", [*opt, "--config", f"{t}/bad.yaml", "--out", f"{t}/o39"]),
        Case("optimize --config a list", [*opt, "--config", f"{t}/list.json", "--out", f"{t}/o40"]),
        Case("optimize --config unknown key", [*opt, "--config", f"{t}/unknown.json", "--out", f"{t}/o41"]),
        Case("optimize --config steps: many", [*opt, "--config", f"{t}/steps_many.json", "--out", f"{t}/o42"]),
        Case("optimize --config temperature: hot", [*opt, "--config", f"{t}/temp_hot.json", "--out", f"{t}/o43"]),
        Case("optimize --config optimize: 5", [*opt, "--config", f"{t}/opt5.json", "--out", f"{t}/o44"]),
        Case("optimize --config steps: 1.5", [*opt, "--config", f"{t}/steps_frac.json", "--out", f"{t}/o45"]),
        Case("optimize --config is a directory", [*opt, "--config", t, "--out", f"{t}/o46"]),
        # optimize: run directories
        Case("optimize --resume without --out", ["optimize", "--resume"]),
        Case("optimize --resume on an empty dir", ["optimize", "--resume", "--out", f"{t}/empty"]),
        Case("optimize --resume on a file", ["optimize", "--resume", "--out", afile]),
        Case("optimize --resume broken config.json", ["optimize", "--resume", "--out", f"{t}/partial"]),
        Case("optimize fresh run into a run", [*opt, "--out", run]),
        Case("optimize --resume with other shots", ["optimize", "--resume", "--out", run, "--shots", "2"]),
        Case("optimize --resume with other --llm", ["optimize", "--resume", "--out", run, "--llm", "bogus:x"]),
        # evaluate
        Case("evaluate missing rundir", ["evaluate", f"{t}/no-run"]),
        Case("evaluate rundir is a file", ["evaluate", afile]),
        Case("evaluate rundir without a run", ["evaluate", f"{t}/empty"]),
        Case("evaluate broken config.json", ["evaluate", f"{t}/partial"]),
        Case("evaluate rundir and --dataset", ["evaluate", run, "--dataset", "demo"]),
        Case("evaluate with nothing", ["evaluate"]),
        Case("evaluate template without {}", [*ev, "--template", "a photo"]),
        Case("evaluate empty template", [*ev, "--template", ""]),
        Case("evaluate unknown --vlm", ["evaluate", "--dataset", "demo", "--vlm", "bogus:x", "--template", "a {}"]),
        Case("evaluate --vlm demo:fashion?x=1", ["evaluate", "--dataset", "demo", "--vlm", "demo:fashion?x=1", "--template", "a {}"], must="option .x"),
        Case("evaluate unknown --dataset", ["evaluate", "--dataset", "nosuch", "--template", "a {}"]),
        Case("evaluate --shots 0", [*ev, "--shots", "0", "--template", "a {}"]),
        Case("evaluate --seed abc", [*ev, "--seed", "abc", "--template", "a {}"]),
        Case("evaluate run with unknown --vlm", ["evaluate", run, "--vlm", "bogus:x"]),
        Case("evaluate run with template without {}", ["evaluate", run, "--template", "no placeholder"]),
        # data
        Case("data --out under a file", ["data", "--out", f"{afile}/x.json"]),
        Case("data --out under /proc", ["data", "--out", "/proc/ipo-x/split.json"]),
        Case("data --out is a directory", ["data", "--out", t]),
        Case("data --shots 0", ["data", "--shots", "0"]),
        Case("data --shots -3", ["data", "--shots", "-3"]),
        Case("data unknown --dataset", ["data", "--dataset", "nosuch"]),
        Case("data --data-root missing", ["data", "--dataset", "folder", "--data-root", "/no/dir"]),
        Case("data --classnames missing", ["data", "--dataset", f"{t}/imgs", "--classnames", "/no/names.txt"]),
        Case("data --classnames malformed", ["data", "--dataset", f"{t}/imgs", "--classnames", f"{t}/names_bad.txt"]),
        Case("data --classnames map two folders to one name", ["data", "--dataset", f"{t}/imgs", "--classnames", f"{t}/names_dup.txt", "--shots", "2"], must="feline"),
        Case("data two folders one class name", ["data", "--dataset", f"{t}/dupes", "--shots", "2"], must="big cat"),
        Case("data class with 0 test images", ["data", "--dataset", f"{t}/notest", "--shots", "1"], expect="warn", must="test"),
        Case("data --template without {}", ["data", "--template", "a photo"]),
        Case("data --strict-shots too many", ["data", "--strict-shots", "--shots", "5000"]),
        Case("data --check-images corrupt", ["data", "--dataset", f"{t}/corrupt", "--shots", "2", "--check-images"]),
        Case("data --classnames on demo", ["data", "--classnames", f"{t}/names_dup.txt"]),
        # features
        Case("features without --dataset", ["features"]),
        Case("features --cache-dir is a file", [*feat, "--cache-dir", afile]),
        Case("features --cache-dir under a file", [*feat, "--cache-dir", f"{afile}/sub"]),
        Case("features --cache-dir under /proc", [*feat, "--cache-dir", "/proc/ipo-x"]),
        Case("features IPO_CACHE_DIR is a file", feat, env={"IPO_CACHE_DIR": afile}),
        Case("features --batch-size 0", [*feat, "--batch-size", "0"]),
        Case("features --shots 0", ["features", "--dataset", "demo", "--vlm", "demo:fashion", "--shots", "0"]),
        Case("features unknown --vlm", ["features", "--dataset", "demo", "--vlm", "bogus:x"]),
        Case("features --device on demo", [*feat, "--device", "cuda:7"]),
        Case("features hf --device bogus", ["features", "--dataset", "demo", "--vlm", "hf:/no/such/clip", "--device", "tpu"]),
        # demo and the rest
        Case("demo --out under a file", ["demo", "--out", f"{afile}/sub", "--steps", "1"]),
        Case("demo --out under /proc", ["demo", "--out", "/proc/ipo-x", "--steps", "1"]),
        Case("demo --steps -1", ["demo", "--steps", "-1"]),
        Case("demo IPO_CACHE_DIR is a file", ["demo", "--steps", "1", "--out", f"{t}/d1"], env={"IPO_CACHE_DIR": afile}),
        Case("backends --check-llm unknown", ["backends", "--check-llm", "bogus"]),
        Case("backends --check-llm openai without key", ["backends", "--check-llm", "openai:gpt-4o-mini"]),
        Case("backends --check-llm local?n_ctx=-5", ["backends", "--check-llm", "local?n_ctx=-5"], must="n_ctx"),
        Case("unknown command", ["nosuchcommand"]),
        *cases2(s, Case),
    ]


_STAGE = re.compile(r"^ipo: (?!error:|warning:)")
_TQDM = re.compile(r"^\S*:\s*\d+%\|")


def error_lines(stderr: str) -> list[str]:
    lines = []
    for raw in stderr.replace("\r", "\n").splitlines():
        line = raw.strip()
        if line and not _STAGE.match(line) and not _TQDM.match(line):
            lines.append(line)
    return lines


def classify(case: Case, rc: int, stdout: str, stderr: str, seconds: float) -> str:
    if "Traceback (most recent call last)" in stderr or "Exception ignored" in stderr:
        return "traceback"
    verdict = _verdict(case, rc, stdout, stderr, seconds)
    if verdict in ("one line", "warned", "quiet", "several lines") and any(
            line.startswith("ipo: ipo:") or len(line) > 400 for line in stderr.splitlines()):
        return "unclear"  # a doubled prefix, or kilobytes of the input echoed back
    return verdict


def _verdict(case: Case, rc: int, stdout: str, stderr: str, seconds: float) -> str:
    lines = error_lines(stderr)
    if case.expect == "partial":  # e.g. classify: the readable files labelled, the others named, exit 2
        named = [l for l in stderr.splitlines() if l.startswith("ipo: ") and re.search(case.must or ".", l)]
        return "partial" if rc == 2 and stdout.strip() and named else ("silent success" if rc == 0 else "several lines")
    if case.expect == "quiet":
        return "quiet" if not lines and rc in (0, 141) else ("several lines" if lines else f"exit {rc}")
    if case.expect == "warn" and rc == 0:
        warnings = [l for l in (stdout + "\n" + stderr).splitlines() if "warning" in l.lower()]
        if case.must:
            warnings = [l for l in warnings if re.search(case.must, l)]
        return "warned" if warnings else "silent success"
    if rc == 0:
        return "silent success"
    if rc == 2 and len(lines) == 1:
        if case.must and not re.search(case.must, lines[0]):
            return "wrong reason"
        if case.max_s and seconds > case.max_s:
            return "slow"
        return "one line"
    if rc == 2:
        return "several lines"
    return f"exit {rc}"


def _digests(folder: str | None) -> dict[str, str]:
    import hashlib

    if not folder or not Path(folder).is_dir():
        return {}
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def run_case(case: Case, tmp: Path, timeout: float) -> tuple[int, str, str, float, str | None]:
    """(exit status, stdout, stderr, seconds, lost-work note) of one case; -1 = timed out."""
    if case.prep:
        case.prep()
    before = _digests(case.guard)
    env = _env(tmp, **(case.env or {}))
    cmd = [sys.executable, "-m", "ipo_vlm.cli.main", *case.args]
    out_target: object = subprocess.PIPE
    if case.stdout == "closed":
        cmd = ["bash", "-c", 'exec "$@" >&-', "sweep", *cmd]
    elif case.stdout and case.stdout != "closed-pipe":
        out_target = open(case.stdout, "w")  # noqa: SIM115
    t0 = time.perf_counter()
    cwd = "/" if case.user is not None else tmp
    try:
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out_target, stderr=subprocess.PIPE, text=True,
                                    user=case.user)
        except PermissionError:  # that uid cannot reach this Python (e.g. one under /root): not a verdict
            return 0, "", "", 0.0, "skipped"
        if case.stdout == "closed-pipe":
            proc.stdout.close()  # the reader is gone before the first line is written (`| head -0`)
            err = proc.stderr.read()
            rc, out = proc.wait(timeout=timeout), ""
        else:
            out, err = proc.communicate(timeout=timeout)
            rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        rc, out, err = -1, "", ""
    seconds = time.perf_counter() - t0
    after = _digests(case.guard)
    lost = [p for p, d in before.items() if after.get(p) != d]
    return rc, out or "", err or "", seconds, (f"changed: {', '.join(Path(p).name for p in lost)}" if lost else None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default=None, help="only cases whose name contains this")
    ap.add_argument("-v", action="store_true", help="print each case's stderr")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--round", type=int, choices=(1, 2), default=None, help="only the first or the second round of cases")
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every case ends as intended (the suite's check)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ipo-sweep-") as d:
        tmp = Path(d)
        started = time.perf_counter()
        s = setup(tmp)
        print(f"setup {time.perf_counter() - started:.0f} s", file=sys.stderr)
        second = {c.name for c in cases2(s, Case)}
        selected = [c for c in cases(s) if (not args.k or args.k in c.name)
                    and (args.round is None or (c.name in second) == (args.round == 2))]
        counts: Counter[str] = Counter()
        print(f"{'case':<46}{'rc':>4}{'lines':>6}{'s':>6}  outcome")
        for case in selected:
            rc, out, err, seconds, lost = run_case(case, tmp, args.timeout)
            outcome = ("skipped" if lost == "skipped" else "timeout" if rc == -1 else "lost work" if lost
                       else classify(case, rc, out, err, seconds))
            counts[outcome] += 1
            lines = error_lines(err)
            first = lost or (lines[0][:90] if lines else "")
            print(f"{case.name:<46}{rc:>4}{len(lines):>6}{seconds:>6.1f}  {outcome:<15} {first}", flush=True)
            if args.v:
                print("    " + "\n    ".join(err.splitlines()[-15:]))
        good = counts["one line"] + counts["warned"] + counts["quiet"] + counts["partial"]
        print(f"\n{len(selected)} cases: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
        ran = len(selected) - counts["skipped"]
        print(f"as intended (one line + exit 2, or a warning where due): {good}/{ran}")
    return 1 if args.strict and good < ran else 0


if __name__ == "__main__":
    sys.exit(main())
