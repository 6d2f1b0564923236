"""What the CLI shows: progress inside a step, plain lines in a log, no "describing" stage
without a captioner; `ipo evaluate RUNDIR` beside its baselines; --json shapes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from ipo_vlm.cli.main import main
from ipo_vlm.cli.optimize import StepProgress

POOL = [f"a {a} photo of a <CLASS>." for a in ("bright", "dark", "small", "large", "worn", "clean")]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("progress")
    script = root / "script.json"
    script.write_text(json.dumps({"responses": ["\n".join(f"{k + 1}. {POOL[(i + k) % 6]}" for k in range(3)) for i in range(6)]}))
    out = root / "run"
    assert main(["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "none",
                 "--steps", "2", "--candidates", "3", "--out", str(out)]) == 0
    return out


def test_a_log_gets_plain_lines_with_the_call_in_flight(tmp_path, capsys) -> None:
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["1. a dark photo of a <CLASS>.\n2. a photo of the <CLASS>."]))
    assert main(["optimize", "--preset", "demo", "--llm", f"scripted:{script}", "--captioner", "none",
                 "--steps", "2", "--candidates", "2", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err  # stderr is not a terminal here
    assert "ipo: step 1/2: asking the LLM (call 1) | best train" in err
    assert "ipo: step 2/2: done | best train" in err
    assert "describing" not in err  # --captioner none describes nothing


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_says_what_the_step_is_doing() -> None:
    stream = _Tty()
    shown = StepProgress(stream)
    p = SimpleNamespace(step=0, steps=3, best_acc=0.5, tokens_in=10, tokens_out=5, doing="")
    shown(p)
    shown(SimpleNamespace(**{**vars(p), "step": 1, "doing": "asking the LLM (call 1)"}))
    assert "step 1: asking the LLM (call 1) | best train 50.0% | tokens 15" in stream.getvalue()
    assert shown.bar.n == 0  # the bar moves when a step finishes, not while it works
    shown(SimpleNamespace(**{**vars(p), "step": 1}))
    assert shown.bar.n == 1
    shown.close()


def test_evaluate_run_shows_the_baselines_beside_the_optimized_template(run: Path, capsys) -> None:
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the demo's hand-crafted template is the baseline itself: one row for both, not the same row twice
    assert [line.split()[0] for line in lines[1:]] == ["baseline", "optimized"]
    assert lines[1].startswith("baseline = hand-crafted") and lines[1].endswith("a photo of a {}.")
    result = json.loads((run / "result.json").read_text())
    assert lines[2].endswith(result["best_template"])
    assert main(["evaluate", str(run), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["template"] == result["best_template"] and got["hm"] == pytest.approx(result["hm"])
    assert got["baseline"]["hm"] == pytest.approx(result["baseline"]["hm"])
    assert got["handcrafted"]["template"] == result["handcrafted"]["template"]


def test_evaluate_json_with_several_templates_is_a_list(run: Path, capsys) -> None:
    capsys.readouterr()
    templates = ["a photo of a {}.", "a dark photo of a {}."]
    assert main(["evaluate", str(run), "--template", templates[0], "--template", templates[1], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert isinstance(got, list) and [g["template"] for g in got] == templates
    assert main(["evaluate", str(run), "--template", templates[1], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["template"] == templates[1]
