"""`ipo history`, `ipo export` and `ipo classify` on a finished run made by `ipo optimize` with
the tiny random CLIP (the real transformers loading code) and a scripted LLM."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.runs.rundir import RunDir

POOL = [f"a {a} {n} of a <CLASS>." for a in ("bright", "dark", "small", "large", "clean", "worn") for n in ("photo", "picture", "image")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    root = tmp_path_factory.mktemp("tools")
    clip = build_tiny_clip(root / "clip")
    script = root / "script.json"
    script.write_text(json.dumps({"responses": ["\n".join(POOL[(3 * i + k) % len(POOL)] for k in range(3)) for i in range(20)]}))
    run = root / "run"
    args = ["optimize", "--preset", "demo", "--vlm", f"hf:{clip}", "--llm", f"scripted:{script}", "--captioner", "none",
            "--steps", "3", "--candidates", "3", "--select-on", "val", "--out", str(run)]
    assert main(args) == 0
    return {"root": root, "clip": clip, "run": run}


def _demo_images(folder, n=4):
    from ipo_vlm.data import load_dataset

    ds = load_dataset("demo", None)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, sample in enumerate(ds.split("test")[:n]):
        path = folder / f"img{i}.png"
        ds.open_image(sample).save(path)
        out.append(path)
    return out


def test_history_lists_distinct_templates_sorted_with_percentages(env, capsys):
    capsys.readouterr()
    assert main(["history", str(env["run"]), "--top", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    history = RunDir(env["run"]).history_records()
    assert len(rows) == len({r["template"] for r in history})
    keys = [(r["val_acc"], -r["val_loss"], r["train_acc"], -r["train_loss"]) for r in rows]
    assert keys == sorted(keys, reverse=True)  # the run selected on val: that is the default order
    assert main(["history", str(env["run"]), "--sort", "train", "--top", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert "train" in table[0] and "val" in table[0] and len(table) == 1 + 3 + 1
    best = max(history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert table[1].endswith(best["template"]) and f"{100 * best['train_acc']:.1f}%" in table[1]
    assert "sorted by train" in table[-1]


def test_export_json_to_stdout_and_file(env, capsys, tmp_path):
    capsys.readouterr()
    assert main(["export", str(env["run"]), "--ensemble", "2"]) == 0
    payload = json.loads(capsys.readouterr().out)
    result = json.loads((env["run"] / "result.json").read_text())
    assert payload["best_template"] == result["best_template"] and payload["vlm"] == f"hf:{env['clip']}"
    assert len(payload["classnames"]) == 10 and len(payload["ensemble"]["templates"]) == 2
    out = tmp_path / "classifier.py"
    assert main(["export", str(env["run"]), "--format", "open_clip", "--out", str(out)]) == 0
    assert "build_zero_shot_classifier" in out.read_text()


def test_export_bad_input_exits_2_with_one_line(env, capsys, tmp_path):
    capsys.readouterr()
    assert main(["export", str(env["run"]), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "known: json, hf, open_clip" in err and len(err.strip().splitlines()) == 1
    assert main(["export", str(env["run"]), "--ensemble", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["export", str(env["run"]), "--ensemble", "999"]) == 2
    assert "larger than the" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["export", str(env["run"]), "--out", str(tmp_path / "file" / "x.json")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.slow  # two subprocesses that import torch and transformers
@pytest.mark.parametrize("ensemble", [[], ["--ensemble", "3"]])
def test_hf_snippet_runs_against_the_tiny_clip_and_agrees_with_classify(env, capsys, tmp_path, ensemble):
    """The exported transformers code is executed for real (tiny CLIP on disk) and its top
    class matches `ipo classify`'s for every image."""
    images = _demo_images(tmp_path / "imgs", 3)
    capsys.readouterr()
    script = tmp_path / "snippet.py"
    assert main(["export", str(env["run"]), "--format", "hf", "--out", str(script), *ensemble]) == 0
    proc = subprocess.run([sys.executable, str(script), *map(str, images)], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    snippet_top = {line.split(" ", 1)[0]: eval(line.split(" ", 1)[1])[0] for line in proc.stdout.splitlines()}  # noqa: S307 (our own output)
    capsys.readouterr()
    assert main(["classify", "--run", str(env["run"]), *map(str, images), "--top", "1", *ensemble]) == 0
    ours = dict(line.rsplit(": ", 1) for line in capsys.readouterr().out.splitlines())
    for path in map(str, images):
        name, prob = snippet_top[path]
        assert ours[path] == f"{name} {100 * prob:.1f}%"


def test_classify_walks_folders_writes_csv_and_reports_bad_files_with_exit_2(env, capsys, tmp_path):
    folder = tmp_path / "in"
    good = _demo_images(folder / "nested", 3)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "readme.md").write_text("not an image")
    out_csv = tmp_path / "labels.csv"
    capsys.readouterr()
    code = main(["classify", "--run", str(env["run"]), str(folder), "--csv", str(out_csv), "--top", "2"])
    printed = capsys.readouterr()
    assert code == 2
    assert "corrupt.jpg" in printed.err and "1 of 4 files" in printed.err and "readme" not in printed.err
    assert len(printed.out.splitlines()) == 3
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 6 and {r["image"] for r in rows} == {str(p) for p in good}
    for path in good:
        probs = [float(r["probability"]) for r in rows if r["image"] == str(path)]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0 + 1e-6
    assert main(["classify", "--run", str(env["run"]), *map(str, good)]) == 0


def test_classify_errors_for_runs_and_flags(env, capsys, tmp_path):
    img = _demo_images(tmp_path / "i", 1)[0]
    capsys.readouterr()
    assert main(["classify", "--run", str(tmp_path / "nope"), str(img)]) == 2
    assert "not found" in capsys.readouterr().err
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_bytes((env["run"] / "config.json").read_bytes())
    assert main(["classify", "--run", str(bare), str(img)]) == 2
    assert "no result.json" in capsys.readouterr().err
    assert main(["classify", "--run", str(env["run"]), str(img), "--ensemble", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["classify", "--run", str(env["run"]), str(img), "--csv", str(tmp_path / "no" / "dir.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
