"""The tracking setting without a server: where it is accepted, that it is no part of a run's
identity, and that a tracker that cannot reach its store costs one stderr line and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.bench import grid_dict, make_world
from helpers.mlflow_server import free_port

from ipo_vlm.benchmark import make_executor, parse_grid, run_benchmark
from ipo_vlm.cli.main import main
from ipo_vlm.config import RunConfig, preset
from ipo_vlm.errors import ConfigError
from ipo_vlm.runs.observe import NullObserver, create_observer
from ipo_vlm.runs.rundir import config_differences

SRC = str(Path(__file__).resolve().parents[2] / "src")
WORLD = {"vlm": "hf:/nowhere", "llm": "scripted:/nowhere.json", "shapes": "/nowhere/shapes", "tools": "/nowhere/tools"}


def test_tracking_is_a_settings_section_off_by_default():
    assert preset("paper").tracking.spec == "none" and isinstance(create_observer(preset("paper").tracking), NullObserver)
    cfg = RunConfig.from_dict({"tracking": {"spec": "mlflow", "experiment": "x"}})
    assert (cfg.tracking.spec, cfg.tracking.experiment) == ("mlflow", "x")
    with pytest.raises(ConfigError, match="unknown setting"):
        RunConfig.from_dict({"tracking": {"spec": "mlflow", "uri": "http://user:secret@host"}})
    with pytest.raises(ConfigError, match="unknown tracker 'wandb'; known: mlflow, none"):
        create_observer(cfg.tracking.__class__(spec="wandb"))


def test_where_a_run_is_reported_is_not_what_it_is():
    a = preset("demo").to_dict()
    b = preset("demo").updated(tracking={"spec": "mlflow", "experiment": "e"}).to_dict()
    assert config_differences(a, b) == []  # a resume may switch tracking on or off
    plain = parse_grid(grid_dict(WORLD))
    tracked = parse_grid(grid_dict(WORLD, tracking="mlflow"))
    assert [c.cell_id for c in plain.cells()] == [c.cell_id for c in tracked.cells()]
    assert all(c.config["tracking"]["spec"] == "mlflow" for c in tracked.cells())
    assert plain.with_settings({"tracking": {"spec": "mlflow"}}).cells()[0].config["tracking"]["spec"] == "mlflow"
    with pytest.raises(ConfigError, match="unknown setting"):
        parse_grid(grid_dict(WORLD, tracking={"spec": "mlflow", "server": "x"}))


def test_an_unknown_tracker_stops_a_grid_before_any_cell(tmp_path):
    with pytest.raises(ConfigError, match="unknown tracker 'nope'"):
        run_benchmark(parse_grid(grid_dict(WORLD, tracking="nope")), tmp_path / "bench", make_executor("local"))
    assert not (tmp_path / "bench" / "runs").exists()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("track-cli"))


def args(world, out, *extra):
    return ["optimize", "--preset", "demo", "--dataset", "folder", "--data-root", world["shapes"], "--shots", "2",
            "--vlm", world["vlm"], "--llm", world["llm"], "--captioner", "none", "--steps", "2", "--candidates", "2",
            "--control", "none", "--out", str(out), *extra]


def test_an_unknown_tracker_is_one_line_and_exit_2_before_the_run(world, tmp_path, capsys):
    assert main(args(world, tmp_path / "run", "--track", "bogus")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown tracker 'bogus'" in err
    assert not (tmp_path / "run").exists()


def test_a_tracking_server_that_is_down_is_one_warning_line_and_the_run_is_whole(world, tmp_path):
    # a real process, so that what reaches stderr is what a user sees
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}", "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-m", "ipo_vlm.cli.main", *args(world, tmp_path / "run", "--track", "mlflow")],
                          capture_output=True, text=True, env=env, timeout=300)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if "tracking" in line.lower() or "warning" in line.lower()]
    assert len(lines) == 1 and "goes on without tracking" in lines[0], err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["complete"] and result["steps_done"] == 2 and "run directory:" in out
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["tracking"]["spec"] == "mlflow"
