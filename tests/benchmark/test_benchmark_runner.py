"""`ipo benchmark` end to end on a tiny world (two folder datasets, a tiny random CLIP, a
scripted LLM): files, skipping, resuming, refusing changed cells, failures, feature sharing,
dry runs, transfer, local processes, and a real kill -9 in the middle of a grid."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.llm_server import FakeOpenAIServer
from helpers.bench import grid_dict, make_world, outcomes, write_grid

from ipo_vlm.benchmark import make_executor, parse_grid, run_benchmark
from ipo_vlm.cli.main import main
from ipo_vlm.errors import ConfigError

CONTRACT = {"cell_id", "name", "dataset", "shots", "seed", "method", "rundir", "status", "error", "base_acc", "novel_acc", "hm",
            "llm_calls", "llm_tokens_in", "llm_tokens_out", "cost_usd", "seconds", "images_encoded", "prompts_encoded"}
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module", autouse=True)
def own_cache(tmp_path_factory):
    """This module's own caches: its counts of images encoded must not depend on which other
    test encoded the same (content-addressed) images first."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPO_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def reference(world, tmp_path_factory):
    """The grid run once, in this process: the numbers every other way of running must give."""
    bench = tmp_path_factory.mktemp("ref") / "bench"
    summary = run_benchmark(parse_grid(grid_dict(world)), bench, make_executor("local"))
    return bench, summary


def lines(bench: Path) -> list[dict]:
    return [json.loads(l) for l in (bench / "cells.jsonl").read_text().splitlines()]


def test_grid_writes_runs_cells_and_tables(reference):
    bench, summary = reference
    recs = lines(bench)
    assert summary.cells == summary.ran == summary.done == 8 and summary.failed == 0
    assert len(recs) == 8 and all(CONTRACT <= set(r) for r in recs)
    assert {r["name"] for r in recs} == {f"{d}-2shot-s{s}-{m}" for d in ("shapes", "tools") for s in (1, 2) for m in ("handcrafted", "ipo")}
    for r in recs:
        assert r["status"] == "done" and r["error"] is None and r["rundir"] == f"runs/{r['name']}"
        result = json.loads((bench / r["rundir"] / "result.json").read_text())
        assert (r["hm"], r["best_template"]) == (result["hm"], result["best_template"])
        assert r["cost_usd"] == 0.0
        # only the LLM method calls the LLM; the hand-crafted template needs no search
        assert r["llm_calls"] >= 1 if r["method"] == "ipo" else r["llm_calls"] == 0
    grid = json.loads((bench / "grid.json").read_text())
    assert len(grid["cells"]) == 8 and {c["cell_id"] for c in grid["cells"]} == {r["cell_id"] for r in recs}
    md = (bench / "table.md").read_text()
    assert "8 of 8 cells done" in md and "average (2 datasets)" in md and "| 2 | ipo | handcrafted | 4 |" in md
    assert (bench / "table.csv").read_text().startswith("kind,dataset,shots,method,n,")


def test_each_image_is_encoded_once_for_the_whole_grid(world, reference):
    bench, summary = reference
    recs = lines(bench)
    files = sum(1 for d in ("shapes", "tools") for p in Path(world[d]).rglob("*.png"))
    # the test split (30% of each class) and the few-shot images, once, however many cells use them
    assert 0 < summary.images_encoded <= files
    by_dataset = {d: [r["images_encoded"] for r in recs if r["dataset"] == d] for d in ("shapes", "tools")}
    for counts in by_dataset.values():
        assert counts[0] > 0 and sum(counts[1:]) < counts[0]  # later cells only add unseen few-shot images
    # another benchmark directory on the same cache encodes nothing at all
    again = run_benchmark(parse_grid(grid_dict(world)), bench.parent / "again", make_executor("local"))
    assert again.images_encoded == 0 and outcomes(bench.parent / "again") == outcomes(bench)


def test_rerun_skips_finished_cells_and_more_seeds_run_only_new_cells(world, reference, tmp_path):
    bench, _ = reference
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(bench, copy)
    before = (copy / "cells.jsonl").read_text()
    started = time.perf_counter()
    s = run_benchmark(parse_grid(grid_dict(world)), copy, make_executor("local"))
    assert (s.ran, s.skipped) == (0, 8) and time.perf_counter() - started < 5
    assert (copy / "cells.jsonl").read_text() == before
    s = run_benchmark(parse_grid(grid_dict(world, seeds=[1, 2, 3])), copy, make_executor("local"))
    assert (s.ran, s.skipped) == (4, 8)
    assert {r["seed"] for r in lines(copy)[8:]} == {3}


def test_changed_settings_are_refused_or_forced_into_new_cells(world, reference, tmp_path):
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(reference[0], copy)
    changed = parse_grid(grid_dict(world, optimize={"steps": 2, "candidates": 3, "select_on": "train"}))
    with pytest.raises(ConfigError, match=r"cell shapes-2shot-s1-handcrafted and 7 more cell\(s\): settings changed since it ran "
                                          r"\(optimize.steps 1 -> 2\); pass --force"):
        run_benchmark(changed, copy, make_executor("local"))
    assert len(lines(copy)) == 8
    s = run_benchmark(changed, copy, make_executor("local"), force=True)
    assert s.ran == 8
    new = lines(copy)[8:]
    assert all(r["rundir"] == f"runs/{r['name']}-{r['cell_id'][:8]}" for r in new)
    # the forced cells are found again without --force, and the table holds only this grid's cells
    assert run_benchmark(changed, copy, make_executor("local")).skipped == 8
    assert "8 of 8 cells done" in (copy / "table.md").read_text()


def test_failed_cells_are_recorded_and_the_others_go_on(world, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    corrupt = tmp_path / "corrupt"
    import shutil

    shutil.copytree(world["shapes"], corrupt)
    for p in sorted(corrupt.rglob("*.png")):
        p.write_bytes(b"not a png")  # every image unreadable
    grid = grid_dict(world, seeds=[1], methods=["ipo"], datasets=[
        {"name": "folder", "data_root": world["shapes"], "label": "shapes"},
        {"name": "folder", "data_root": str(tmp_path / "missing"), "label": "missing"},
        {"name": "folder", "data_root": str(corrupt), "label": "corrupt"}])
    path = write_grid(tmp_path / "grid.yaml", grid)
    assert main(["benchmark", str(path), "--out", str(tmp_path / "bench")]) == 1
    out = capsys.readouterr().out
    recs = {r["name"]: r for r in lines(tmp_path / "bench")}
    assert recs["shapes-2shot-s1-ipo"]["status"] == "done"
    assert recs["missing-2shot-s1-ipo"]["status"] == "failed" and "dataset folder not found" in recs["missing-2shot-s1-ipo"]["error"]
    assert "cannot read image" in recs["corrupt-2shot-s1-ipo"]["error"] and "\n" not in recs["corrupt-2shot-s1-ipo"]["error"]
    assert "2 failed" in out and "failed: missing-2shot-s1-ipo: dataset folder not found" in out
    assert "| missing-2shot-s1-ipo | failed: dataset folder not found" in (tmp_path / "bench" / "table.md").read_text()
    # a rerun retries the failed cells only
    (tmp_path / "missing").mkdir()
    shutil.copytree(world["tools"], tmp_path / "missing", dirs_exist_ok=True)
    assert main(["benchmark", str(path), "--out", str(tmp_path / "bench")]) == 1  # corrupt still fails
    recs = {r["name"]: r for r in lines(tmp_path / "bench")}
    assert recs["missing-2shot-s1-ipo"]["status"] == "done"
    assert [r["name"] for r in lines(tmp_path / "bench")].count("shapes-2shot-s1-ipo") == 1


def test_dry_run_checks_the_backends_then_prints_calls_tokens_and_cost_and_writes_nothing(world, tmp_path, capsys, monkeypatch):
    grid = grid_dict(world, llm="openai:gpt-4o-mini", optimize={"steps": 10, "candidates": 5, "select_on": "train"})
    path = write_grid(tmp_path / "grid.yaml", grid)
    # a cache of its own: the module's other tests have put these images in the shared one
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    # the preflight: without an API key the LLM cells cannot run, and the dry run says so
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(["benchmark", str(path), "--out", str(tmp_path / "bench"), "--dry-run"]) == 2
    out = capsys.readouterr().out
    assert "cannot run shapes-2shot-s1-ipo" in out and "OPENAI_API_KEY" in out
    assert "cannot run shapes-2shot-s1-handcrafted" not in out  # no LLM, nothing missing
    with FakeOpenAIServer(models=("gpt-4o-mini",)) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        assert main(["benchmark", str(path), "--out", str(tmp_path / "bench"), "--dry-run"]) == 0
        assert server.chat_requests() == []  # checked, never called
    out = capsys.readouterr().out
    assert "8 cells: 0 finished, 8 to run" in out and "openai:gpt-4o-mini" in out
    assert "ipo" in out and "40-120" in out  # 4 cells x 10 steps, up to 2 retries per step
    assert "estimated cost: ~$0.0" in out and "prices of 2025-" in out
    # the VLM's part, timed here: images not yet in the feature store, prompts of all cells
    images = re.search(r"images to encode: ([\d,]+) not in the feature store", out)
    prompts = re.search(r"prompts: ([\d,]+) over 8 cells", out)
    assert images and int(images.group(1).replace(",", "")) > 0
    assert prompts and int(prompts.group(1).replace(",", "")) > 4 * 10 * 5  # 4 IPO cells x 10 steps x 5 candidates, x classes
    assert "VLM time on cpu: ~" in out
    assert not (tmp_path / "bench").exists()


def test_transfer_evaluates_each_source_template_on_the_targets(world, tmp_path):
    grid = grid_dict(world, datasets=[{"name": "folder", "data_root": world["shapes"], "label": "shapes"}],
                     transfer={"source": "shapes", "targets": [{"name": "folder", "data_root": world["tools"], "label": "tools"}]})
    bench = tmp_path / "bench"
    s = run_benchmark(parse_grid(grid), bench, make_executor("local"))
    assert s.transfer_done == 4 and s.transfer_failed == 0
    recs = [json.loads(l) for l in (bench / "transfer.jsonl").read_text().splitlines()]
    assert {r["name"] for r in recs} == {f"shapes-2shot-s{s}-{m}" for s in (1, 2) for m in ("handcrafted", "ipo")}
    assert all(0.0 <= r["acc"] <= 1.0 and r["n_test"] > 0 and r["target"] == "tools" for r in recs)
    md = (bench / "transfer.md").read_text()
    assert "Transfer from shapes" in md and "| 2 | ipo |" in md
    assert (bench / "transfer.csv").read_text().startswith("source,shots,method,target,n,acc_mean,acc_sd")
    assert run_benchmark(parse_grid(grid), bench, make_executor("local")).transfer_done == 0


@pytest.mark.slow
def test_two_local_processes_give_the_local_results(world, reference, tmp_path):
    bench = tmp_path / "bench"
    s = run_benchmark(parse_grid(grid_dict(world)), bench, make_executor("local", jobs=2))
    assert s.done == 8 and s.failed == 0
    assert outcomes(bench) == outcomes(reference[0])
    assert (bench / "features.jsonl").exists()


def _cli(bench: Path, grid: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ipo_vlm.cli.main", "benchmark", str(grid), "--out", str(bench)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.slow
def test_kill_9_mid_grid_then_rerun_redoes_nothing_finished(world, reference, tmp_path):
    slow = make_world(tmp_path / "slow-world", delay_s=0.4)
    # the same datasets and CLIP as the reference; only the LLM answers slowly
    grid = grid_dict(world, llm=slow["llm"])
    path = write_grid(tmp_path / "grid.yaml", grid)
    bench = tmp_path / "bench"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "IPO_CACHE_DIR": str(tmp_path / "cache")}
    proc = _cli(bench, path, env)
    deadline = time.time() + 240
    while time.time() < deadline and (not (bench / "cells.jsonl").exists() or len(lines(bench)) < 3):
        time.sleep(0.2)
    time.sleep(0.5)  # into the next cell
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = lines(bench)
    assert 3 <= len(killed) < 8
    finished = {r["name"]: (bench / r["rundir"] / "result.json").stat().st_mtime_ns for r in killed}
    proc = _cli(bench, path, env)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    after = lines(bench)
    assert len(after) == 8 and [r["name"] for r in after[: len(killed)]] == list(finished)
    for name, mtime in finished.items():
        assert (bench / "runs" / name / "result.json").stat().st_mtime_ns == mtime  # not run again
    assert f"{len(killed)} already finished" in out.decode()
    assert {k: v[:5] for k, v in outcomes(bench).items()} == {k: v[:5] for k, v in outcomes(reference[0]).items()}


def test_a_finished_run_without_its_line_is_recorded_and_an_unfinished_one_resumed(world, reference, tmp_path):
    import shutil

    copy = tmp_path / "bench"
    shutil.copytree(reference[0], copy)
    recs = lines(copy)
    # killed after the last run wrote result.json but before its line; and one run killed midway
    (copy / "cells.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs[:6]))
    unfinished = copy / recs[6]["rundir"]
    (unfinished / "result.json").unlink()
    s = run_benchmark(parse_grid(grid_dict(world)), copy, make_executor("local"))
    assert (s.skipped, s.recorded, s.ran, s.done) == (6, 1, 1, 8)
    assert outcomes(copy) == outcomes(reference[0])
    assert json.loads((unfinished / "config.json").read_text())["created"]  # the same run, continued


def test_prefetch_encodes_the_images_of_each_cells_own_class_split(tmp_path, monkeypatch):
    """A cell with random halves trains on other classes' images than the protocol's halves;
    the features encoded ahead are those the cell will read, so the cell encodes none."""
    from ipo_vlm.benchmark.cells import CountingVLM
    from ipo_vlm.benchmark.prefetch import PrefetchTask, prefetch_features
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.engine.features import FeatureStore
    from ipo_vlm.vlm import create_vlm

    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    dataset = load_dataset("demo")

    def samples(class_split: str) -> dict:
        split = make_split(dataset, 2, 3, class_split=class_split)
        return {s.ref: s for part in (split.train, split.val, split.test_base, split.test_novel) for s in part}

    drawn = samples("random")
    assert set(drawn) != set(samples("ordered"))
    out = prefetch_features(PrefetchTask("demo", None, "demo:fashion", ((2, 3, "random"),), "demo"))
    assert out["error"] is None and out["images_needed"] == len(drawn) and out["images_encoded"] == len(drawn)
    vlm = CountingVLM(create_vlm("demo:fashion"))
    FeatureStore(vlm).features(dataset, list(drawn.values()))
    assert vlm.images == 0
