"""MLflow tracking against a real ``mlflow server`` (SQLite store, proxied artifacts, loopback):
a short optimize and a resumed one, a two-cell grid nested under its parent run, and a store
that is down or unusable, all read back through ``MlflowClient``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers.bench import grid_dict, make_world
from helpers.mlflow_server import MlflowServer, free_port
from helpers.report import ANSWERS

from ipo_vlm.captioner.base import NoCaptioner
from ipo_vlm.config import preset
from ipo_vlm.runs.optimize import Backends, optimize
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM
from ipo_vlm.testing.scripted import ScriptedLLM

STEP_METRICS = ("best_train_acc", "valid_candidates", "tokens_in", "tokens_out", "tokens", "step_seconds")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as s:
        yield s


@pytest.fixture
def tracked(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    return server


def config(experiment: str, steps: int = 3, track: str = "mlflow"):
    return preset("demo").updated(data={"dataset": "fake", "shots": 4}, vlm="fake", captioner={"spec": "none"},
                                  optimize={"steps": steps, "candidates": 3, "memory_size": 6, "select_on": "train", "ensemble": 3},
                                  tracking={"spec": track, "experiment": experiment})


def run_fake(path: Path, cfg, resume: bool = False):
    ds = FakeDataset()
    backends = Backends(ds, FakeVLM(ds.info.classnames), ScriptedLLM(ANSWERS, model_id="scripted-test"), NoCaptioner())
    return optimize(cfg, path, resume=resume, backends=backends).to_dict()


def only_run(client, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1, [r.info.run_name for r in runs]
    return runs[0]


def history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))]


def test_optimize_is_one_mlflow_run_with_settings_steps_result_and_files(tracked, tmp_path, capsys):
    result = run_fake(tmp_path / "run", config("opt"))
    assert capsys.readouterr().out == ""  # MLflow's run links stay off the command's output
    client = tracked.client()
    run = only_run(client, "opt")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    state = json.loads((tmp_path / "run" / "tracking.json").read_text())
    assert state["run_id"] == run.info.run_id and state["tracking_uri"] == tracked.url
    p = run.data.params
    assert p["optimize.steps"] == "3" and p["optimize.candidates"] == "3" and p["data.dataset"] == "fake" and p["method"] == "ipo"
    assert not any(k.startswith("tracking.") for k in p)
    # one point per step (0: the seeds, then 1..3), best accuracy never falling
    best = history(client, run.info.run_id, "best_train_acc")
    assert [s for s, _ in best] == [0, 1, 2, 3]
    assert all(b >= a for (_, a), (_, b) in zip(best, best[1:]))
    assert best[-1][1] == pytest.approx(max(json.loads(l)["train_acc"] for l in (tmp_path / "run" / "history.jsonl").read_text().splitlines()))
    steps = [json.loads(l) for l in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert [v for _, v in history(client, run.info.run_id, "valid_candidates")] == [float(s["valid"]) for s in steps]
    assert [v for _, v in history(client, run.info.run_id, "tokens")] == [float(s["tokens_in"] + s["tokens_out"]) for s in steps]
    assert all(v >= 0 for _, v in history(client, run.info.run_id, "step_seconds"))
    m = run.data.metrics
    for key in ("base_acc", "novel_acc", "hm"):
        assert m[key] == pytest.approx(result[key], abs=1e-9)
        assert m[f"baseline/{key}"] == pytest.approx(result["baseline"][key], abs=1e-9)
        assert m[f"ensemble_top3/{key}"] == pytest.approx(result["ensembles"][0][key], abs=1e-9)
        assert m[f"control/{key}"] == pytest.approx(result["control"][key], abs=1e-9)
    assert run.data.tags["ipo.template"] == result["best_template"]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"result.json", "history.jsonl", "report.html"}
    got = Path(client.download_artifacts(run.info.run_id, "result.json", str(tmp_path / "dl")))
    assert json.loads(got.read_text()) == result
    report = Path(client.download_artifacts(run.info.run_id, "report.html", str(tmp_path / "dl"))).read_text()
    assert "<html" in report.lower() and not (tmp_path / "run" / "report.html").exists()


def test_a_resumed_run_continues_its_mlflow_run(tracked, tmp_path):
    run_fake(tmp_path / "run", config("resume", steps=2))
    client = tracked.client()
    first = only_run(client, "resume")
    assert first.info.status == "FINISHED"
    result = run_fake(tmp_path / "run", config("resume", steps=4), resume=True)
    run = only_run(client, "resume")
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert [s for s, _ in history(client, run.info.run_id, "best_train_acc")] == [0, 1, 2, 3, 4]
    # params are write-once in MLflow: the first value stays, the change is a tag
    assert run.data.params["optimize.steps"] == "2"
    assert json.loads(run.data.tags["ipo.resumed_changes"])["optimize.steps"] == [2, 4]
    assert run.data.metrics["hm"] == pytest.approx(result["hm"], abs=1e-9) and run.data.metrics["steps_done"] == 4


@pytest.fixture(scope="module")
def grid_bench(server, tmp_path_factory):
    """A two-cell grid (hand-crafted and IPO on one tiny dataset) tracked in experiment "grid"."""
    from ipo_vlm.benchmark import make_executor, parse_grid, run_benchmark

    root = tmp_path_factory.mktemp("grid")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", server.url)
        mp.setenv("IPO_CACHE_DIR", str(root / "cache"))
        world = make_world(root / "world")
        grid = grid_dict(world, datasets=[{"name": "folder", "data_root": world["shapes"], "label": "shapes"}], seeds=[1],
                         tracking={"spec": "mlflow", "experiment": "grid"})
        summary = run_benchmark(parse_grid(grid), root / "bench", make_executor("local"))
        assert summary.done == 2
        # a rerun skips the finished cells and continues the same parent run
        run_benchmark(parse_grid(grid), root / "bench", make_executor("local"))
    return root / "bench"


def test_a_grid_is_a_parent_run_with_one_nested_run_per_cell(server, grid_bench):
    client = server.client()
    exp = client.get_experiment_by_name("grid")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(runs) == 3 and len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and json.loads(parent.data.params["methods"]) == ["handcrafted", "ipo"]
    assert history(client, parent.info.run_id, "cells_done") == [(1, 1.0), (2, 2.0)]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"table.md", "table.csv"}
    cells = {json.loads(l)["name"]: json.loads(l) for l in (grid_bench / "cells.jsonl").read_text().splitlines()}
    children = {r.info.run_name: r for r in runs if r is not parent}
    assert set(children) == set(cells) == {"shapes-2shot-s1-handcrafted", "shapes-2shot-s1-ipo"}
    for name, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.info.status == "FINISHED"
        assert child.data.metrics["hm"] == pytest.approx(cells[name]["hm"], abs=1e-9)
        assert child.data.params["method"] == cells[name]["method"] and child.data.params["data.seed"] == "1"
        assert {a.path for a in client.list_artifacts(child.info.run_id)} == {"result.json", "history.jsonl", "report.html"}


@pytest.mark.slow
def test_the_grid_s_cells_side_by_side_in_the_mlflow_ui(server, grid_bench, tmp_path):
    """What a user sees, rendered client-side by MLflow's own UI in headless Chromium: the
    experiment's runs (the grid's run) and the comparison of its two cells."""
    from helpers.report import image_stats

    client = server.client()
    exp = client.get_experiment_by_name("grid")
    runs = client.search_runs([exp.experiment_id])
    cells = sorted((r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.run_name)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    ids = json.dumps([r.info.run_id for r in cells]).replace(" ", "")
    pages = {  # page: (url, height, names it must show)
        "runs": (f"{server.url}/#/experiments/{exp.experiment_id}/runs", 1000, [parent.info.run_name]),
        "compare": (f"{server.url}/#/compare-runs?runs={ids}&experiments=[\"{exp.experiment_id}\"]", 2400,
                    [r.info.run_name for r in cells] + ["shapes-2shot-s1-ipo", "hm", "base_acc", "novel_acc"]),
    }
    keep = os.environ.get("IPO_KEEP_SCREENSHOTS")
    doms = {}
    for name, (url, height, names) in pages.items():
        shot = tmp_path / f"mlflow-{name}.png"
        dom = doms[name] = screenshot(url, shot, height)
        size, spread, inked = image_stats(shot)
        assert size == (1600, height) and spread > 15 and inked > 0.02, (name, spread, inked)  # not a blank page
        for text in names:
            assert text in dom, (name, text)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / shot.name).write_bytes(shot.read_bytes())
    # the comparison shows each cell's own numbers (to 3 decimals) and template, side by side
    from html import escape

    for r in cells:
        shown = f"{r.data.metrics['hm']:.3f}".rstrip("0").rstrip(".")  # as the UI prints it: 0.698, 0.5, 0
        assert f">{shown}<" in doms["compare"], (r.info.run_name, shown)
        assert escape(r.data.tags["ipo.template"], quote=False) in doms["compare"], r.info.run_name


def screenshot(url: str, shot: Path, height: int = 1000) -> str:
    """The DOM after MLflow's scripts ran, and a screenshot, from headless Chromium kept offline
    (everything but loopback, which Chromium never proxies, goes to a closed port)."""
    from helpers.report import chromium

    proc = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
         f"--user-data-dir={shot.parent / (shot.stem + '-profile')}", f"--proxy-server=http://127.0.0.1:{free_port()}",
         f"--window-size=1600,{height}", "--virtual-time-budget=30000",
         f"--screenshot={shot}", "--dump-dom", url],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.parametrize("uri", ["http://127.0.0.1:{port}", "bogus-scheme://nowhere"])
def test_a_store_that_is_down_or_unusable_is_one_warning_and_the_run_is_whole(uri, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri.format(port=free_port()))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        result = run_fake(tmp_path / "run", config("down"))
    assert time.monotonic() - started < 60
    assert json.loads((tmp_path / "run" / "result.json").read_text()) == result and result["steps_done"] == 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "ipo_vlm.tracking", [r.getMessage() for r in warnings]
    assert "the run goes on without tracking" in warnings[0].getMessage()
    assert not (tmp_path / "run" / "tracking.json").exists()
