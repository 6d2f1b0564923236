"""Running a grid into ``BENCHDIR``: plan every cell, run those not finished, record each as
it finishes, and rebuild the tables after every cell.

``BENCHDIR`` layout::

    grid.json           the resolved grid (inputs and every cell's settings)
    cells.jsonl         one line per finished cell (done or failed), appended as it finishes
    runs/<cell name>/   an ordinary run directory per cell
    table.md table.csv paired.csv cost.csv      rebuilt after every cell
    features.jsonl      image features computed up front per dataset (parallel executors)
    transfer.jsonl transfer.md transfer.csv     when the grid has a transfer section

Crash safety: a cell's run directory is resumable at any point and ``cells.jsonl`` is
append-only, so after a kill a rerun skips recorded cells, records cells whose run finished
after the last line was written, and resumes the others."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipo_vlm.benchmark.cells import (
    CellOutcome, CellPlan, CellTask, append_record, cell_record, plan_cell, read_records, refuse_changed, run_cell,
)
from ipo_vlm.benchmark.executors import Executor
from ipo_vlm.benchmark.grid import Grid
from ipo_vlm.benchmark.prefetch import PrefetchTask, prefetch_features
from ipo_vlm.benchmark.prices import PriceTable, load_prices
from ipo_vlm.benchmark.table import write_tables
from ipo_vlm.benchmark.transfer import append_transfer, read_transfer, run_transfer, transfer_tasks
from ipo_vlm.tracking import grid_tracker
from ipo_vlm.errors import ConfigError, one_line
from ipo_vlm.io.jsonio import append_jsonl, atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class Summary:
    cells: int = 0
    skipped: int = 0
    recorded: int = 0
    ran: int = 0
    done: int = 0
    failed: int = 0
    images_encoded: int = 0
    images_prefetched: int = 0
    seconds: float = 0.0
    transfer_done: int = 0
    transfer_failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Callbacks:
    """How the CLI follows along; the library itself only logs."""

    planned: Callable[[list[CellPlan]], None] = lambda plans: None
    stage: Callable[[str], None] = lambda msg: log.info("%s", msg)
    cell_done: Callable[[dict[str, Any]], None] = lambda record: None


def plan(grid: Grid, benchdir: Path, force: bool = False) -> list[CellPlan]:
    records = read_records(benchdir)
    plans = [plan_cell(c, benchdir, records, force) for c in grid.cells()]
    refuse_changed(plans)
    return plans


def _recorded_outcome(cell_id: str, run: Path) -> CellOutcome:
    """A run that finished but whose line was lost to a kill: record it without rerunning."""
    from ipo_vlm.runs.run import Run

    result = Run.open(run, need_result=True).result_dict or {}
    return CellOutcome(cell_id, "done", None, result, float(result.get("minutes") or 0) * 60)


def run_benchmark(grid: Grid, benchdir: str | Path, executor: Executor, force: bool = False,
                  callbacks: Callbacks | None = None) -> Summary:
    """Run every unfinished cell of ``grid`` into ``benchdir``; see the module docstring."""
    cb = callbacks or Callbacks()
    bench = Path(benchdir)
    if bench.exists() and not bench.is_dir():
        raise ConfigError(f"--out {bench} exists and is not a directory")
    started = time.perf_counter()
    plans = plan(grid, bench, force)
    bench.mkdir(parents=True, exist_ok=True)
    atomic_write_json(bench / "grid.json", grid.to_dict())
    prices = load_prices(grid.prices)
    summary = Summary(cells=len(plans))
    tracker = grid_tracker(plans[0].cell.config.get("tracking", {}) if plans else {})
    parent = tracker.started(bench, grid.to_dict(), len(plans))
    records = read_records(bench)
    transfer = read_transfer(bench)

    def finish(p: CellPlan, outcome: CellOutcome) -> None:
        rec = cell_record(p.cell, p.rundir, outcome, prices)
        append_record(bench, rec)
        records[p.cell.cell_id] = rec
        write_tables(bench, grid, records, prices, transfer)
        summary.done += rec["status"] == "done"
        summary.failed += rec["status"] == "failed"
        summary.images_encoded += outcome.images_encoded
        if rec["status"] == "failed":
            summary.failures.append((p.cell.name, rec["error"] or ""))
        tracker.cell_done(summary.done, summary.failed)
        cb.cell_done(rec)

    for p in plans:
        if p.action == "skip":
            summary.skipped += 1
            summary.done += records[p.cell.cell_id]["status"] == "done"
        elif p.action == "record":
            summary.recorded += 1
            finish(p, _recorded_outcome(p.cell.cell_id, bench / p.rundir))
    write_tables(bench, grid, records, prices, transfer)
    todo = [p for p in plans if p.action in ("new", "resume")]
    cb.planned(plans)
    try:
        if todo and executor.parallel:
            _prefetch(grid, todo, bench, executor, summary, cb)
        tasks = [CellTask(p.cell, str((bench / p.rundir).resolve()), p.action == "resume", parent) for p in todo]
        for i, outcome, error in executor.map(run_cell, tasks, grid.ray or None):
            if outcome is None:  # the worker died: the cell failed, the grid goes on
                outcome = CellOutcome(todo[i].cell.cell_id, "failed", error, None, 0.0)
            summary.ran += 1
            finish(todo[i], outcome)
        _transfer(grid, bench, executor, records, transfer, prices, summary, cb)
    finally:
        executor.close()
        tracker.finished(bench, summary.failed)
    summary.seconds = time.perf_counter() - started
    return summary


def _prefetch(grid: Grid, todo: list[CellPlan], bench: Path, executor: Executor, summary: Summary, cb: Callbacks) -> None:
    groups: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for p in todo:
        c = p.cell
        data = c.config["data"]
        g = groups.setdefault((data["dataset"], data["data_root"], c.config["vlm"]), {"label": c.dataset, "splits": set()})
        g["splits"].add((c.shots, c.seed, data.get("class_split", "ordered")))
    tasks = [PrefetchTask(name, root, vlm, tuple(sorted(g["splits"])), g["label"]) for (name, root, vlm), g in groups.items()]
    cb.stage(f"encoding the images of {len(tasks)} dataset(s) once before the cells")
    for i, out, error in executor.map(prefetch_features, tasks, grid.ray or None):
        out = out or {"dataset": tasks[i].label, "vlm": tasks[i].vlm, "images_encoded": 0, "error": error}
        append_jsonl(bench / "features.jsonl", out)
        summary.images_prefetched += out.get("images_encoded") or 0
        if out.get("error"):
            log.warning("features of %s: %s", out["dataset"], out["error"])


def _transfer(grid: Grid, bench: Path, executor: Executor, records: dict[str, dict[str, Any]],
              transfer: dict[str, dict[str, Any]], prices: PriceTable, summary: Summary, cb: Callbacks) -> None:
    tasks = transfer_tasks(grid, records, bench)
    if not tasks:
        if grid.transfer is not None:
            write_tables(bench, grid, records, prices, transfer)
        return
    cb.stage(f"transfer: {len(tasks)} evaluation(s) of templates from {grid.transfer.source}")
    for i, out, error in executor.map(run_transfer, tasks, grid.ray or None):
        if out is None:
            t = tasks[i]
            out = {"key": t.key, "source_cell_id": t.source["cell_id"], "name": t.source["name"], "target": t.target["label"],
                   "status": "failed", "error": error}
        append_transfer(bench, out)
        transfer[out["key"]] = out
        summary.transfer_done += out["status"] == "done"
        summary.transfer_failed += out["status"] == "failed"
        write_tables(bench, grid, records, prices, transfer)


def preflight_cell(cell: Any, checked: dict[str, str | None]) -> None:
    """Resolve a cell's dataset and backends (once per distinct combination in ``checked``), so
    a missing dataset, model or API key shows up in the dry run, before anything is spent."""
    from ipo_vlm.runs.optimize import create_backends
    from ipo_vlm.errors import ConfigError
    from ipo_vlm.io.hashing import sha256_json
    from ipo_vlm.methods import create_method

    config = cell.run_config()
    uses_llm = create_method(config.method).uses_llm
    key = sha256_json([config.data.dataset, config.data.data_root, config.vlm, config.vlm_options,
                       config.llm.spec if uses_llm else None, config.captioner.spec if uses_llm else None])
    if key not in checked:
        try:
            create_backends(config, uses_llm=uses_llm)
            checked[key] = None
        except Exception as e:  # reported per cell below
            checked[key] = one_line(e)
    if checked[key]:
        raise ConfigError(checked[key])


def dry_run(grid: Grid, benchdir: str | Path, force: bool = False) -> dict[str, Any]:
    """Cells to run and their estimated LLM calls, tokens and cost, without running anything."""
    from ipo_vlm.benchmark.cells import plan_llm

    bench = Path(benchdir)
    plans = plan(grid, bench, force)
    prices = load_prices(grid.prices)
    rows = []
    checked: dict[str, str | None] = {}  # backends key -> its preflight error
    runnable: list[Any] = []
    for p in plans:
        if p.action not in ("new", "resume"):
            continue
        row: dict[str, Any] = {"name": p.cell.name, "method": p.cell.method, "action": p.action, "llm": p.cell.config["llm"]["spec"]}
        try:
            preflight_cell(p.cell, checked)
            est = plan_llm(p.cell)
            if est is None:  # a method without LLM calls
                row.update(calls_min=0, calls_max=0, tokens_in=0, tokens_out=0, cost_usd=0.0)
            else:
                row.update(calls_min=est.calls_min, calls_max=est.calls_max, tokens_in=est.tokens_in, tokens_out=est.tokens_out_typical,
                           cost_usd=prices.cost(row["llm"], est.tokens_in, est.tokens_out_typical))
        except Exception as e:  # a cell that cannot even be planned is reported, not fatal
            row["error"] = one_line(e)
        rows.append(row)
        if "error" not in row:
            runnable.append(p.cell)
    return {"cells": len(plans), "skip": sum(p.action in ("skip", "record") for p in plans), "rows": rows,
            "prices_date": prices.date, "compute": plan_compute(runnable)}


def plan_compute(cells: list[Any]) -> Any:
    """The VLM's images and prompts for the cells to run, timed on a sample here
    (:func:`ipo_vlm.engine.preflight.estimate_grid`); None when no cell runs."""
    from ipo_vlm.engine.preflight import estimate_grid
    from ipo_vlm.methods.base import traits

    if not cells:
        return None
    return estimate_grid([(c.run_config(), not traits(c.method).fixed) for c in cells])
