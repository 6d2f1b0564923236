"""The optimization loop with a scripted LLM and a deterministic fake scorer: keeping the true
best, rejecting bad output, resuming after a kill at any point, and the token budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import Killed, kill_at

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.llm.cache import ResponseCache
from ipo_vlm.llm.session import LLMSession
from ipo_vlm.config import DataConfig, LLMConfig, OptimizeConfig, RunConfig
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.methods.ipo.loop import OptimizationLoop
from ipo_vlm.methods.memory import Memory
from ipo_vlm.methods.ipo.proposer import MetaPromptProposer
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.scored import ScoredTemplate
from ipo_vlm.testing.scripted import ScriptedLLM

SEEDS = ["a photo of a {}.", "a photo of a {}, a type of garment."]
ADJECTIVES = ["bright", "dark", "small", "large", "close-up", "blurry", "clean", "cropped", "studio", "folded", "worn", "new"]
NOUNS = ["photo", "picture", "image", "snapshot", "render"]
POOL = [f"a {a} {n} of a <CLASS>." for a in ADJECTIVES for n in NOUNS]


def fake_score(templates, val=False):
    """Deterministic pseudo-scores, a pure function of the template text (the validation
    scores, when asked for, are the same numbers)."""
    out = []
    for t in templates:
        h = int(sha256_json(t)[:8], 16)
        acc, loss = (h % 17) / 16, 0.5 + (h >> 8) % 1000 / 1000
        out.append(ScoredTemplate(t, acc, loss, val_accuracy=acc if val else None, val_loss=loss if val else None))
    return out


def pool_answers(n_responses=40, per=5):
    """Answers of 5 numbered lines each, drawn deterministically from POOL."""
    answers = []
    for i in range(n_responses):
        lines = [POOL[(i * 7 + j * 11) % len(POOL)] for j in range(per)]
        answers.append("\n".join(f"{k + 1}. {t}" for k, t in enumerate(lines)))
    return answers


def make_loop(run: Path, llm, steps=6, candidates=3, retries=1, budget=None, cache_dir=None, hook=None, memory_size=5, val=False):
    rundir = RunDir(run)
    cache = ResponseCache(cache_dir) if cache_dir else None
    session = LLMSession(llm, cache=cache, calls_path=rundir.llm_calls_path, max_total_tokens=budget, start_tokens=rundir.llm_tokens_spent())
    config = RunConfig(
        data=DataConfig(seed=1),
        llm=LLMConfig(temperature=1.0, top_p=1.0, repeat_penalty=None, max_tokens=400),
        optimize=OptimizeConfig(steps=steps, candidates=candidates, max_retries_per_step=retries),
    )
    proposer = MetaPromptProposer("garment", candidates, ["a light, plain item"], "demo")
    score = (lambda ts: fake_score(ts, val=True)) if val else fake_score
    return OptimizationLoop(rundir, config, session, proposer, score, Memory(memory_size), hook=hook)


def ranked(pool):
    """A pool as the memory ranks it (call ids differ between a run and its resumed twin)."""
    return [(e.template, e.accuracy, e.loss, e.step, e.source) for e in pool]


def start(run: Path, resume: bool, steps: int = 6) -> None:
    RunDir(run).prepare({"optimize": {"steps": steps}, "x": 1}, resume=resume, prompt_version="t1")


def run_files_are_json(run: Path) -> None:
    for path in run.iterdir():
        if path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".json":
            json.loads(path.read_text())


def test_loop_keeps_true_best_and_records_every_candidate(tmp_path):
    start(tmp_path, resume=False)
    llm = ScriptedLLM(pool_answers())
    result = make_loop(tmp_path, llm).run(SEEDS)
    history = RunDir(tmp_path).history_records()
    assert result.stopped == "done" and result.steps_done == 6
    assert [r["source"] for r in history[:2]] == ["seed", "seed"]
    templates = [r["template"] for r in history]
    assert len(set(templates)) == len(templates), "a template was scored twice"
    assert all("{}" in t and "<CLASS>" not in t for t in templates)
    true_best = max(history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    assert result.pool[0].template == true_best["template"]
    top5 = sorted(history, key=lambda r: (-r["train_acc"], r["train_loss"], r["step"]))[:5]
    assert {e.template for e in result.pool} == {r["template"] for r in top5}
    for r in history:
        scored = fake_score([r["template"]])[0]
        assert (r["train_acc"], r["train_loss"]) == (scored.accuracy, scored.loss)
    calls = [json.loads(l) for l in (tmp_path / "llm_calls.jsonl").read_text().splitlines()]
    llm_ids = {r["llm_call_id"] for r in history if r["source"] == "llm"}
    assert llm_ids <= {c["id"] for c in calls}
    run_files_are_json(tmp_path)


def test_requests_carry_sampling_seed_and_constraint(tmp_path):
    start(tmp_path, resume=False)
    llm = ScriptedLLM(pool_answers())
    make_loop(tmp_path, llm, steps=2).run(SEEDS)
    req = llm.requests[0]
    assert req.constraint is not None and req.constraint.n == 3 and req.constraint.placeholder == "<CLASS>"
    assert len({r.seed for r in llm.requests}) == len(llm.requests)
    assert "<CLASS>" in req.messages[-1][1] and "{}" not in req.messages[-1][1]


def test_bad_outputs_are_rejected_and_retries_are_bounded(tmp_path):
    start(tmp_path, resume=False)
    garbage = "\n".join(["T-shirt", "Trouser -> 0.82", "a {0.__class__} of <CLASS>", "", "<CLASS> and <CLASS>", "a photo of a <CLASS>."])
    llm = ScriptedLLM([garbage])
    result = make_loop(tmp_path, llm, steps=3, retries=2).run(SEEDS)
    history = RunDir(tmp_path).history_records()
    assert [r["source"] for r in history] == ["seed", "seed"]  # nothing usable, nothing scored
    assert len(llm.requests) == 3 * 3  # 1 call + 2 retries per step, no more
    assert [r.sample_index for r in llm.requests[:3]] == [0, 1, 2]
    steps = [s for s in result.steps if s.step > 0]
    assert all(s.valid == 0 and s.returned >= 3 for s in steps)
    assert sum(sum(s.rejected.values()) for s in steps) == sum(s.returned for s in steps)
    assert "already scored" in steps[0].rejected
    run_files_are_json(tmp_path)


def test_one_good_template_among_garbage_is_kept(tmp_path):
    start(tmp_path, resume=False)
    llm = ScriptedLLM(["1. T-shirt\n2. a studio shot of a <CLASS> on white.\n3. {}{}"])
    make_loop(tmp_path, llm, steps=1, retries=0).run(SEEDS)
    assert RunDir(tmp_path).history_records()[-1]["template"] == "a studio shot of a {} on white."


def test_a_step_asks_again_only_while_fewer_than_half_are_usable(tmp_path):
    # 5 wanted, enough = 3: one answer with 3 new templates ends the step, one with 2 does not
    three = "1. a worn photo of a <CLASS>.\n2. a new image of a <CLASS>.\n3. a dark render of a <CLASS>.\n4. x\n5. y"
    two = "1. a clean snapshot of a <CLASS>.\n2. a folded picture of a <CLASS>.\n3. x\n4. y\n5. z"
    start(tmp_path / "a", resume=False)
    llm = ScriptedLLM([three])
    loop = make_loop(tmp_path / "a", llm, steps=1, candidates=5, retries=2)
    loop.run(SEEDS)
    assert len(llm.requests) == 1
    start(tmp_path / "b", resume=False)
    llm = ScriptedLLM([two])
    make_loop(tmp_path / "b", llm, steps=1, candidates=5, retries=2).run(SEEDS)
    assert len(llm.requests) == 3  # the same answer never adds the third template: bounded


def comparable(run: Path):
    rd = RunDir(run)
    steps = [(s.step, s.llm_calls, s.returned, s.valid, s.rejected) for s in rd.steps()]
    # call ids are random per call; everything else must match exactly
    history = [{k: v for k, v in r.items() if k != "llm_call_id"} for r in rd.history_records()]
    assert all(r["llm_call_id"] for r in rd.history_records() if r["source"] == "llm")
    return history, steps


def uninterrupted(tmp_path: Path, val=False):
    ref = tmp_path / "ref"
    start(ref, resume=False)
    result = make_loop(ref, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "cache-ref", val=val).run(SEEDS)
    return ref, result


@pytest.mark.parametrize("event,nth", [("candidate", 1), ("candidate", 2), ("candidate", 7), ("step_done", 1), ("step_done", 3), ("step_done", 7)])
def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path, event, nth):
    ref, ref_result = uninterrupted(tmp_path)
    run = tmp_path / "run"
    start(run, resume=False)
    with pytest.raises(Killed):
        make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "cache", hook=kill_at(event, nth)).run(SEEDS)
    start(run, resume=True)
    recorded_before = {r["template"] for r in RunDir(run).history_records()}
    scored: list[str] = []

    def score(ts):
        scored.extend(ts)
        return fake_score(ts)

    loop = make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "cache")
    loop.score = score
    result = loop.run(SEEDS)
    assert comparable(run) == comparable(ref)
    assert ranked(result.pool) == ranked(ref_result.pool)
    assert not set(scored) & recorded_before, "re-scored a recorded candidate"

    def paid(r):
        return sum(1 for line in (r / "llm_calls.jsonl").read_text().splitlines() if not json.loads(line)["cache_hit"])

    # no LLM call was paid twice, and the tokens spent equal the uninterrupted run's
    assert paid(run) == paid(ref)
    assert RunDir(run).llm_tokens_spent() == RunDir(ref).llm_tokens_spent()
    run_files_are_json(run)


@pytest.mark.parametrize("cut", ["torn_history", "drop_last_step", "mid_step"])
def test_resume_from_truncated_files(tmp_path, cut):
    ref, ref_result = uninterrupted(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    hist, steps = run / "history.jsonl", run / "steps.jsonl"
    if cut == "torn_history":
        lines = hist.read_text().splitlines(keepends=True)
        hist.write_text("".join(lines[:-2]) + lines[-2][:15])  # a kill mid-write
        steps.write_text("".join(steps.read_text().splitlines(keepends=True)[:-1]))
    elif cut == "mid_step":  # killed after two of the last step's candidates were recorded
        last = RunDir(run).last_step_done()
        lines = hist.read_text().splitlines(keepends=True)
        keep = [l for l in lines if json.loads(l)["step"] < last]
        keep += [l for l in lines if json.loads(l)["step"] == last][:2]
        hist.write_text("".join(keep))
        steps.write_text("".join(steps.read_text().splitlines(keepends=True)[:-1]))
    else:
        steps.write_text("".join(steps.read_text().splitlines(keepends=True)[:-1]))
    start(run, resume=True)
    result = make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "cache-ref").run(SEEDS)
    assert comparable(run) == comparable(ref)
    assert ranked(result.pool) == ranked(ref_result.pool)
    run_files_are_json(run)


def test_resume_with_val_scores(tmp_path):
    ref, _ = uninterrupted(tmp_path, val=True)
    assert all("val_acc" in r and "val_loss" in r for r in RunDir(ref).history_records())
    run = tmp_path / "run"
    start(run, resume=False)
    with pytest.raises(Killed):
        make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "c", hook=kill_at("candidate", 5), val=True).run(SEEDS)
    start(run, resume=True)
    make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "c", val=True).run(SEEDS)
    assert comparable(run) == comparable(ref)


def test_budget_stops_cleanly_and_a_raised_budget_finishes_the_run(tmp_path):
    ref, ref_result = uninterrupted(tmp_path)
    per_call = json.loads((ref / "llm_calls.jsonl").read_text().splitlines()[0])
    run = tmp_path / "run"
    start(run, resume=False)
    # room for about two calls at their worst (prompt + max_tokens 400): a hard cap
    budget = 2 * (per_call["tokens_in"] + 400)
    result = make_loop(run, ScriptedLLM(pool_answers()), budget=budget, cache_dir=tmp_path / "c").run(SEEDS)
    assert result.stopped == "budget"
    assert 1 <= result.steps_done < 6
    spent = sum(c["tokens_in"] + c["tokens_out"] for c in map(json.loads, (run / "llm_calls.jsonl").read_text().splitlines()))
    assert spent <= budget
    done = RunDir(run).last_step_done()
    assert all(r["step"] <= done + 1 for r in RunDir(run).history_records())
    start(run, resume=True)
    result = make_loop(run, ScriptedLLM(pool_answers()), cache_dir=tmp_path / "c").run(SEEDS)
    assert result.stopped == "done"
    assert comparable(run) == comparable(ref)


def test_resume_with_other_settings_is_refused_but_more_steps_are_fine(tmp_path):
    RunDir(tmp_path).prepare({"optimize": {"steps": 3, "candidates": 5}}, resume=False, prompt_version="t1")
    with pytest.raises(ConfigError, match="optimize.candidates"):
        RunDir(tmp_path).prepare({"optimize": {"steps": 3, "candidates": 4}}, resume=True, prompt_version="t1")
    with pytest.raises(ConfigError, match="prompt_version"):
        RunDir(tmp_path).prepare({"optimize": {"steps": 3, "candidates": 5}}, resume=True, prompt_version="t2")
    RunDir(tmp_path).append_step(StepRecord(step=0))
    with pytest.raises(ConfigError, match="already holds a run"):
        RunDir(tmp_path).prepare({"optimize": {"steps": 3, "candidates": 5}}, resume=False, prompt_version="t1")
    RunDir(tmp_path).prepare({"optimize": {"steps": 9, "candidates": 5}}, resume=True, prompt_version="t1")
    assert RunDir(tmp_path).read_config()["config"]["optimize"]["steps"] == 9
    with pytest.raises(ConfigError, match="not a run directory"):
        RunDir(tmp_path / "nothing").prepare({}, resume=True, prompt_version="t1")


def test_more_steps_continue_a_finished_run(tmp_path):
    ref = tmp_path / "ref"
    start(ref, resume=False, steps=6)
    make_loop(ref, ScriptedLLM(pool_answers()), steps=6, cache_dir=tmp_path / "c1").run(SEEDS)
    run = tmp_path / "run"
    start(run, resume=False, steps=3)
    make_loop(run, ScriptedLLM(pool_answers()), steps=3, cache_dir=tmp_path / "c2").run(SEEDS)
    start(run, resume=True, steps=6)
    make_loop(run, ScriptedLLM(pool_answers()), steps=6, cache_dir=tmp_path / "c2").run(SEEDS)
    assert comparable(run) == comparable(ref)
