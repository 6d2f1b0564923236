"""`ipo optimize` / `ipo evaluate` end to end on the demo images, a tiny random CLIP (the real
transformers loading and encoding code) and a scripted LLM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.runs.rundir import RunDir

ADJ = ["bright", "dark", "small", "large", "close-up", "blurry", "clean", "cropped", "studio", "folded", "worn", "grayscale"]
NOUNS = ["photo", "picture", "image", "snapshot", "render"]
POOL = [f"a {a} {n} of a <CLASS>." for a in ADJ for n in NOUNS]
RESULT_FIELDS = {
    "best_template", "base_acc", "novel_acc", "hm", "baseline", "handcrafted", "steps_done", "llm_tokens_in",
    "llm_tokens_out", "valid_rate", "minutes", "complete",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    root = tmp_path_factory.mktemp("cli")
    clip = build_tiny_clip(root / "clip")
    script = root / "script.json"
    answers = ["\n".join(f"{k + 1}. {POOL[(i * 7 + k * 11) % len(POOL)]}" for k in range(5)) for i in range(40)]
    answers.append("T-shirt\nTrouser -> 0.82\na {0.__class__} of <CLASS>")  # garbage now and then
    script.write_text(json.dumps({"responses": answers}))
    slow = root / "slow.json"
    slow.write_text(json.dumps({"responses": answers, "delay_s": 0.4}))
    return {"root": root, "vlm": f"hf:{clip}", "llm": f"scripted:{script}", "slow": f"scripted:{slow}"}


def base_args(env, out, *extra):
    return ["optimize", "--preset", "demo", "--vlm", env["vlm"], "--llm", env["llm"], "--captioner", "none",
            "--steps", "4", "--candidates", "3", "--select-on", "train", "--out", str(out), *extra]


def assert_all_json(run: Path) -> None:
    for path in run.iterdir():
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".json":
            json.loads(path.read_text())


def test_optimize_writes_a_complete_run_directory(env, capsys):
    out = env["root"] / "run"
    assert main(base_args(env, out)) == 0
    printed = capsys.readouterr().out
    assert {"config.json", "split.json", "history.jsonl", "steps.jsonl", "llm_calls.jsonl", "result.json"} <= {p.name for p in out.iterdir()}
    assert_all_json(out)
    result = json.loads((out / "result.json").read_text())
    assert RESULT_FIELDS <= set(result)
    assert result["steps_done"] == 4 and result["complete"] is True
    for r in (result, result["baseline"], result["handcrafted"]):
        assert 0.0 <= r["base_acc"] <= 1.0 and 0.0 <= r["novel_acc"] <= 1.0
        b, n = r["base_acc"], r["novel_acc"]
        assert r["hm"] == pytest.approx(2 * b * n / (b + n) if b + n else 0.0)
    assert result["baseline"]["template"] == "a photo of a {}."
    history = RunDir(out).history_records()
    best = max(history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert result["best_template"] == best["template"]
    assert result["llm_tokens_in"] > 0 and result["llm_tokens_out"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["prompt_version"] and config["versions"]["transformers"]
    assert config["config"]["optimize"]["steps"] == 4
    assert f"{100 * result['hm']:.1f}%" in printed and "baseline" in printed and str(out) in printed
    calls = [json.loads(l) for l in (out / "llm_calls.jsonl").read_text().splitlines()]
    assert all("valid" in c and "returned" in c for c in calls)


def test_evaluate_json_matches_the_run_result(env, capsys):
    out = env["root"] / "run"
    if not (out / "result.json").exists():  # run alone, without the test above
        assert main(base_args(env, out)) == 0
    result = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["template"] == result["best_template"]
    assert got["base_acc"] == pytest.approx(result["base_acc"]) and got["hm"] == pytest.approx(result["hm"])
    assert main(["evaluate", "--dataset", "demo", "--vlm", env["vlm"], "--template", "a photo of a {}.", "--json"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert base["novel_acc"] == pytest.approx(result["baseline"]["novel_acc"])


def test_a_random_class_split_is_drawn_once_and_kept_by_evaluate(env, capsys, tmp_path):
    from ipo_vlm.data import load_dataset
    from ipo_vlm.data.fewshot import class_halves

    out = tmp_path / "run"
    assert main(base_args(env, out, "--steps", "1", "--set", "data.class_split=random", "--set", "data.seed=3")) == 0
    split = json.loads((out / "split.json").read_text())
    names = load_dataset("demo").info.classnames
    base, novel = class_halves(names, 3, "random")
    assert split["base_labels"] == list(base) and split["novel_classnames"] == [names[i] for i in novel]
    assert split["base_labels"] != [0, 1, 2, 3, 4]
    result = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["novel_acc"] == pytest.approx(result["novel_acc"])
    # the same template and halves from flags: --class-split random draws the run's halves again
    # (scored with the demo stand-in, whose accuracies tell the classes apart, unlike tiny CLIP's)
    assert main(["evaluate", str(out), "--vlm", "demo:fashion", "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)
    flags = ["evaluate", "--dataset", "demo", "--vlm", "demo:fashion", "--seed", "3", "--template", result["best_template"], "--json"]
    assert main([*flags, "--class-split", "random"]) == 0
    drawn = json.loads(capsys.readouterr().out)
    assert (drawn["base_acc"], drawn["novel_acc"]) == pytest.approx((kept["base_acc"], kept["novel_acc"]))
    assert main(flags) == 0  # the protocol's halves: other classes are novel
    assert json.loads(capsys.readouterr().out)["novel_acc"] != pytest.approx(kept["novel_acc"])
    assert main(base_args(env, tmp_path / "never", "--set", "data.class_split=shuffled")) == 2
    assert "class_split must be one of ordered, random; got 'shuffled'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_evaluate_of_a_run_refuses_split_flags_and_follows_a_moved_dataset(env, capsys, tmp_path):
    import shutil

    from helpers.data_fixtures import make_class_folders

    data = make_class_folders(tmp_path / "birds", {"jay": 8, "robin": 8, "wren": 8, "finch": 8})
    out = tmp_path / "run"
    assert main(base_args(env, out, "--steps", "1", "--dataset", "folder", "--data-root", str(data), "--shots", "2")) == 0
    result = json.loads((out / "result.json").read_text())
    capsys.readouterr()
    for flags in (["--seed", "2"], ["--shots", "4", "--class-split", "random"]):
        assert main(["evaluate", str(out), *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flags[0] in err[0] and "split.json" in err[0]
    moved = shutil.move(str(data), str(tmp_path / "elsewhere"))
    assert main(["evaluate", str(out), "--json"]) == 2  # the run's own data root is gone
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["evaluate", str(out), "--data-root", moved, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["template"] == result["best_template"]
    assert (got["base_acc"], got["novel_acc"]) == pytest.approx((result["base_acc"], result["novel_acc"]))


def test_resume_with_more_steps_continues_and_other_settings_are_refused(env, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(base_args(env, out, "--steps", "2")) == 0
    assert main(["optimize", "--out", str(out), "--resume", "--steps", "4"]) == 0
    assert RunDir(out).last_step_done() == 4
    ref = tmp_path / "ref"
    assert main(base_args(env, ref)) == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k != "llm_call_id"} for r in rs]  # noqa: E731
    assert strip(RunDir(out).history_records()) == strip(RunDir(ref).history_records())
    capsys.readouterr()
    assert main(["optimize", "--out", str(out), "--resume", "--candidates", "2"]) == 2
    assert "optimize.candidates" in capsys.readouterr().err


def test_user_errors_exit_2_before_any_work(env, capsys, tmp_path):
    out = tmp_path / "never"
    assert main(base_args(env, out)[:-2] + ["--llm", "nosuch:thing", "--out", str(out)]) == 2
    assert "unknown llm backend" in capsys.readouterr().err
    assert not out.exists()
    assert main(base_args(env, out)[:-2] + ["--llm", "scripted:/no/such/file.json", "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["optimize", "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    os.environ.pop("OPENAI_API_KEY", None)
    assert main(base_args(env, out)[:-2] + ["--llm", "openai:gpt-4o-mini", "--out", str(out)]) == 2
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert not out.exists()


def test_dry_run_is_a_preflight_then_an_estimate(env, capsys, tmp_path):
    # what is wrong is said before any estimate: an unknown LLM, a VLM that is not there
    assert main(base_args(env, tmp_path / "dry", "--dry-run", "--llm", "nosuch:x")) == 2
    assert "unknown llm backend 'nosuch'" in capsys.readouterr().err
    assert main(base_args(env, tmp_path / "dry", "--dry-run", "--vlm", f"hf:{tmp_path / 'no-model'}")) == 2
    capsys.readouterr()
    assert main(base_args(env, tmp_path / "dry", "--dry-run", "--steps", "10")) == 0
    printed = capsys.readouterr().out
    assert "calls: 10 (up to 30 with retries)" in printed
    tokens = int(printed.split("first prompt: ~")[1].split()[0])
    assert tokens > 50
    # the VLM's part: the demo's 5 base classes x 3 candidates per step, timed on this machine
    assert "prompts: 15 per step x 10 steps" in printed and "VLM time on cpu: ~" in printed
    assert "images to encode: " in printed and " not in the feature store" in printed
    assert not (tmp_path / "dry").exists()


def test_a_billion_steps_are_estimated_at_once(env, capsys, tmp_path):
    started = time.perf_counter()
    assert main(base_args(env, tmp_path / "dry", "--dry-run", "--steps", "1000000000", "--candidates", "100000")) == 0
    printed = capsys.readouterr().out
    assert time.perf_counter() - started < 30 and "calls: 1000000000" in printed
    most = int(printed.split("at most ")[1].split(" out")[0])
    assert most >= int(printed.split("+ ~")[1].split()[0])  # the typical output never exceeds the maximum


def test_budget_is_a_hard_cap_with_its_own_exit_code(env, capsys, tmp_path):
    out = tmp_path / "run"
    assert main(base_args(env, out, "--max-llm-tokens", "300", "--no-cache")) == 3  # cache hits cost nothing
    printed = capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["stopped"] == "budget" and result["complete"] is False and result["steps_done"] < 4
    assert result["llm_tokens_in"] + result["llm_tokens_out"] <= 300
    assert "--resume" in printed
    assert main(["optimize", "--out", str(out), "--resume", "--max-llm-tokens", "100000"]) == 0
    assert json.loads((out / "result.json").read_text())["complete"] is True


def test_kill_9_mid_run_then_resume_equals_an_uninterrupted_run(env, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert main(base_args(env, ref, "--no-cache", "--steps", "5")) == 0
    args = base_args(env, out, "--no-cache", "--steps", "5")
    args[args.index("--llm") + 1] = env["slow"]
    proc = subprocess.Popen([sys.executable, "-m", "ipo_vlm.cli.main", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = out / "history.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "result.json").exists()
    assert main(["optimize", "--out", str(out), "--resume"]) == 0
    strip = lambda rs: [{k: v for k, v in r.items() if k != "llm_call_id"} for r in rs]  # noqa: E731
    assert strip(RunDir(out).history_records()) == strip(RunDir(ref).history_records())
    a, b = (json.loads((d / "result.json").read_text()) for d in (out, ref))
    for key in ("best_template", "base_acc", "novel_acc", "hm", "steps_done", "baseline"):
        assert a[key] == b[key]
    assert_all_json(out)


def test_config_file_then_flags_override_it(env, capsys, tmp_path):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("optimize:\n  steps: 7\n  candidates: 2\nllm:\n  spec: local\n")
    assert main(["optimize", "--preset", "demo", "--config", str(cfg), "--dry-run"]) == 0
    assert "calls: 7 (up to 21 with retries)" in capsys.readouterr().out
    assert main(["optimize", "--preset", "demo", "--config", str(cfg), "--steps", "3", "--dry-run"]) == 0
    assert "calls: 3 " in capsys.readouterr().out
    cfg.write_text("optimize:\n  stepz: 7\n")
    assert main(["optimize", "--config", str(cfg), "--dry-run"]) == 2
    assert "stepz" in capsys.readouterr().err


def test_a_missing_data_root_is_a_one_line_error(env, capsys, tmp_path):
    out = tmp_path / "run"
    args = base_args(env, out) + ["--dataset", "oxford_pets", "--data-root", str(tmp_path / "nowhere")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ipo: error:")
    assert not out.exists()
