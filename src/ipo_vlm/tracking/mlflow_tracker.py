"""MLflow runs for ``ipo optimize`` and for a benchmark grid (a parent run, one nested run per cell).

A run's MLflow run id is kept in ``RUNDIR/tracking.json`` (a grid's in ``BENCHDIR/tracking.json``)
so that a resumed run continues the same MLflow run. What is logged:

- params: the run's resolved settings, dotted (``optimize.steps``); on a resume, settings that
  MLflow already holds keep their first value (MLflow params are write-once) and the changes
  are a tag, ``ipo.resumed_changes``;
- per step: ``best_train_acc``, ``valid_candidates``, ``tokens_in``, ``tokens_out``, ``tokens``
  and ``step_seconds``;
- at the end: ``base_acc``, ``novel_acc``, ``hm`` of the selected template; the same under
  ``baseline/``, ``handcrafted/``, ``ensemble_topK/`` and ``control/`` (with ``control/diff_hm``);
  the template as the tag ``ipo.template``; ``result.json``, ``history.jsonl`` and the run's
  ``report.html`` as artifacts."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from ipo_vlm.io.jsonio import atomic_write_json
from ipo_vlm.runs.observe import StepReport
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.tracking.connection import Connection, flat_params, public_uri

STATE_FILE = "tracking.json"
_BATCH = 100  # MLflow's limit of params or tags per request


def _now_ms() -> int:
    return int(time.time() * 1000)


def read_state(directory: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and state.get("tracker") == "mlflow" else None


def _write_state(directory: Path, conn: Connection, run_id: str) -> None:
    atomic_write_json(directory / STATE_FILE, {"tracker": "mlflow", "tracking_uri": public_uri(conn.uri),
                                               "experiment": conn.experiment, "experiment_id": conn.experiment_id(), "run_id": run_id})


def _open_run(conn: Connection, directory: Path, name: str, tags: dict[str, str]) -> tuple[str, bool]:
    """(run id, continued): the run recorded in ``directory`` when it lives in this store, else a new one."""
    from mlflow.entities import RunStatus

    state = read_state(directory)
    if state and state.get("tracking_uri") == public_uri(conn.uri):
        try:
            conn.client.get_run(state["run_id"])
        except Exception:  # deleted from the store: start a new one
            state = None
        else:
            conn.client.update_run(state["run_id"], status=RunStatus.to_string(RunStatus.RUNNING))
            return state["run_id"], True
    run = conn.client.create_run(conn.experiment_id(), run_name=name, tags=tags)
    _write_state(directory, conn, run.info.run_id)
    return run.info.run_id, False


def _log_params(conn: Connection, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    have = conn.client.get_run(run_id).data.params
    new = [Param(k, v) for k, v in params.items() if k not in have]
    for i in range(0, len(new), _BATCH):
        conn.client.log_batch(run_id, params=new[i:i + _BATCH])


def _log_metrics(conn: Connection, run_id: str, values: dict[str, float | None], step: int) -> None:
    from mlflow.entities import Metric

    ts = _now_ms()
    metrics = [Metric(k, float(v), ts, step) for k, v in values.items() if isinstance(v, (int, float)) and v == v]
    if metrics:
        conn.client.log_batch(run_id, metrics=metrics)


def result_metrics(result: dict[str, Any]) -> dict[str, float | None]:
    """The final numbers of a run: the selected template, baselines, ensembles, the control."""
    out: dict[str, float | None] = {k: result.get(k) for k in ("base_acc", "novel_acc", "hm")}
    out["selected_train_acc"] = result.get("best_train_acc")  # "best_train_acc" is the per-step curve
    for k in ("steps_done", "templates_scored", "llm_calls", "llm_tokens_in", "llm_tokens_out", "valid_rate", "minutes"):
        out[k] = result.get(k)
    for name in ("baseline", "handcrafted"):
        for k in ("base_acc", "novel_acc", "hm"):
            out[f"{name}/{k}"] = (result.get(name) or {}).get(k)

    def ensembles(prefix: str, rows: list[dict[str, Any]]) -> None:
        for e in rows:
            for k in ("base_acc", "novel_acc", "hm"):
                out[f"{prefix}ensemble_top{e['k']}/{k}"] = e.get(k)

    ensembles("", result.get("ensembles") or [])
    control = result.get("control")
    if control:
        for k in ("base_acc", "novel_acc", "hm", "diff_hm"):
            out[f"control/{k}"] = control.get(k)
        ensembles("control/", control.get("ensembles") or [])
    return out


class MlflowRunTracker:
    """The MLflow run of one run directory (an ``ipo optimize`` or one benchmark cell)."""

    def __init__(self, experiment: str | None = None, parent: dict[str, Any] | None = None, run_name: str | None = None) -> None:
        parent = parent or {}
        self.conn = Connection(parent.get("uri"), experiment, parent.get("experiment_id"))
        # the grid's tracker already warned that the store failed: its cells stay quiet
        self.conn.broken = bool(parent.get("broken"))
        self.parent_run_id = parent.get("run_id")
        self.run_name = run_name
        self.run_id: str | None = None

    def started(self, rundir: RunDir, config: dict[str, Any], resumed: bool) -> None:
        self.conn.call("start the run", lambda: self._start(rundir, config))

    def _start(self, rundir: RunDir, config: dict[str, Any]) -> None:
        tags = {"ipo.run_dir": str(rundir.path.resolve()), "ipo.method": str(config.get("method")),
                "ipo.dataset": str(config.get("data", {}).get("dataset"))}
        if self.parent_run_id:
            tags["mlflow.parentRunId"] = self.parent_run_id
        self.run_id, continued = _open_run(self.conn, rundir.path, self.run_name or rundir.path.name, tags)
        _log_params(self.conn, self.run_id, flat_params({k: v for k, v in config.items() if k != "tracking"}))
        if continued and rundir.changes:
            self.conn.client.set_tag(self.run_id, "ipo.resumed_changes", json.dumps(rundir.changes)[:5000])

    def step(self, report: StepReport) -> None:
        if self.run_id is None:
            return
        values = {"best_train_acc": report.best_train_acc, "valid_candidates": report.valid, "tokens_in": report.tokens_in,
                  "tokens_out": report.tokens_out, "tokens": report.tokens_in + report.tokens_out, "step_seconds": report.seconds}
        self.conn.call("log a step", lambda: _log_metrics(self.conn, self.run_id, values, report.step))  # type: ignore[arg-type]

    def finished(self, rundir: RunDir, result: dict[str, Any]) -> None:
        if self.run_id is not None:
            self.conn.call("log the result", lambda: self._finish(rundir, result))

    def _finish(self, rundir: RunDir, result: dict[str, Any]) -> None:
        from mlflow.entities import RunStatus

        run_id = self.run_id
        assert run_id is not None
        client = self.conn.client
        _log_metrics(self.conn, run_id, result_metrics(result), int(result.get("steps_done") or 0))
        client.set_tag(run_id, "ipo.template", str(result.get("best_template"))[:5000])
        client.set_tag(run_id, "ipo.complete", str(bool(result.get("complete"))).lower())
        for path in (rundir.result_path, rundir.history_path):
            if path.exists():
                client.log_artifact(run_id, str(path))
        with tempfile.TemporaryDirectory(prefix="ipo-report-") as tmp:
            # the report is rendered beside the run, never into it (the run's files are its own)
            from ipo_vlm.report import build_run_report

            client.log_artifact(run_id, str(build_run_report(rundir.path, Path(tmp) / "report.html")))
        status = "FINISHED" if result.get("complete") else "KILLED"
        client.set_terminated(run_id, RunStatus.to_string(getattr(RunStatus, status)))

    def failed(self, error: BaseException) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import RunStatus

        status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
        self.conn.call("close the run", lambda: self.conn.client.set_terminated(self.run_id, RunStatus.to_string(getattr(RunStatus, status))))


def load_run_tracker(name: str, experiment: str | None = None, parent: dict[str, Any] | None = None,
                     run_name: str | None = None) -> MlflowRunTracker:
    """The ``mlflow`` entry of :data:`ipo_vlm.runs.observe.TRACKERS`."""
    return MlflowRunTracker(experiment, parent, run_name)


class MlflowGridTracker:
    """The parent run of a benchmark grid; each cell's run is nested under it."""

    def __init__(self, experiment: str | None = None) -> None:
        self.conn = Connection(None, experiment)
        self.run_id: str | None = None

    def started(self, bench: Path, grid: dict[str, Any], cells: int) -> dict[str, Any] | None:
        """Open (or continue) the grid's run; returns what a cell needs to nest under it."""
        def start() -> dict[str, Any]:
            self.run_id, _ = _open_run(self.conn, bench, bench.resolve().name, {"ipo.bench_dir": str(bench.resolve()), "ipo.kind": "grid"})
            params = {k: json.dumps(grid.get(k)) for k in ("datasets", "shots", "seeds", "methods", "preset")}
            _log_params(self.conn, self.run_id, {**params, "cells": str(cells)})
            return {"run_id": self.run_id, "uri": self.conn.uri, "experiment_id": self.conn.experiment_id()}

        return self.conn.call("start the grid's run", start) or {"broken": True}

    def cell_done(self, done: int, failed: int) -> None:
        if self.run_id is not None:
            self.conn.call("log the grid's progress", lambda: _log_metrics(
                self.conn, self.run_id, {"cells_done": done, "cells_failed": failed}, done + failed))  # type: ignore[arg-type]

    def finished(self, bench: Path, failed: int) -> None:
        if self.run_id is None:
            return

        def finish() -> None:
            from mlflow.entities import RunStatus

            for name in ("table.md", "table.csv"):
                if (bench / name).exists():
                    self.conn.client.log_artifact(self.run_id, str(bench / name))
            status = "FAILED" if failed else "FINISHED"
            self.conn.client.set_terminated(self.run_id, RunStatus.to_string(getattr(RunStatus, status)))

        self.conn.call("close the grid's run", finish)
