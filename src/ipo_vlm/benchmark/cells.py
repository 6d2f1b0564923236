"""One cell of the grid: where its run directory is, whether it must run, running it, and the
line it leaves in ``BENCHDIR/cells.jsonl``.

:func:`run_cell` is the one place where a cell's settings become a ``RunConfig`` and a run
happens; every executor (in-process, local processes, Ray tasks) calls it with plain data, so
each worker builds its own backends (no model or database handle crosses a process)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.benchmark.grid import Cell
from ipo_vlm.errors import ConfigError, IpoError, one_line
from ipo_vlm.io.jsonio import append_jsonl, read_jsonl

log = logging.getLogger(__name__)

CELLS_FILE = "cells.jsonl"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class CellTask:
    """What a worker needs to run one cell: the cell and where (absolute) its run lives."""

    cell: Cell
    out: str
    resume: bool
    #: the grid's tracked run, for the cell's own to nest under (``ipo_vlm.tracking``)
    tracking_parent: dict[str, Any] | None = None


@dataclass
class CellOutcome:
    cell_id: str
    status: str  # "done" | "failed"
    error: str | None
    result: dict[str, Any] | None
    seconds: float
    images_encoded: int = 0
    prompts_encoded: int = 0


class CountingVLM:
    """Passes everything to the wrapped VLM and counts the images and prompts it encodes (the
    feature and text caches answer the rest, so these are the cell's real encoder costs)."""

    def __init__(self, vlm: Any) -> None:
        self._vlm = vlm
        self.images = 0
        self.prompts = 0

    def encode_images(self, images: Sequence[Any]) -> Any:
        self.images += len(images)
        return self._vlm.encode_images(images)

    def encode_texts(self, texts: Sequence[str]) -> Any:
        self.prompts += len(texts)
        return self._vlm.encode_texts(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vlm, name)


def run_cell(task: CellTask) -> CellOutcome:
    """Run (or resume) one cell into its run directory. Never raises: a failure is an outcome
    with a one-line error, so the other cells go on."""
    from ipo_vlm.runs.optimize import create_backends, optimize
    from ipo_vlm.config import RunConfig
    from ipo_vlm.methods import create_method
    from ipo_vlm.runs.observe import create_observer

    started = time.perf_counter()
    counter: CountingVLM | None = None
    try:
        config = RunConfig.from_dict(task.cell.config)
        backends = create_backends(config, uses_llm=create_method(config.method).uses_llm)
        counter = CountingVLM(backends.vlm)
        backends.vlm = counter
        observer = create_observer(config.tracking, task.tracking_parent, task.cell.name)
        result = optimize(config, task.out, resume=task.resume, backends=backends, observer=observer).to_dict()
        status, error = "done", None
    except Exception as e:  # any failure is this cell's, reported in one line
        if not isinstance(e, IpoError):
            log.exception("cell %s failed", task.cell.name)
        result, status, error = None, "failed", one_line(e)
    return CellOutcome(task.cell.cell_id, status, error, result, time.perf_counter() - started,
                       counter.images if counter else 0, counter.prompts if counter else 0)


def plan_llm(cell: Cell) -> Any:
    """The LLM calls and tokens a cell would need (``DryRunPlan``), before anything runs; a
    method that calls no LLM plans none."""
    from ipo_vlm.methods.base import create_method, dry_run

    config = cell.run_config()
    return dry_run(create_method(config.method), config)


# -- the cells file ----------------------------------------------------------------------------


def cell_record(cell: Cell, rundir: str, outcome: CellOutcome, prices: Any) -> dict[str, Any]:
    """The ``cells.jsonl`` line of a finished (done or failed) cell."""
    r = outcome.result or {}
    tin, tout = r.get("llm_tokens_in"), r.get("llm_tokens_out")
    llm = cell.config["llm"]["spec"]
    cost = prices.cost(llm, tin, tout) if outcome.status == "done" else None
    return {
        "cell_id": cell.cell_id,
        "name": cell.name,
        "dataset": cell.dataset,
        "dataset_name": cell.dataset_name,
        "shots": cell.shots,
        "seed": cell.seed,
        "method": cell.method,
        "vlm": cell.config["vlm"],
        "llm": llm,
        "rundir": rundir,
        "status": outcome.status,
        "error": outcome.error,
        "base_acc": r.get("base_acc"),
        "novel_acc": r.get("novel_acc"),
        "hm": r.get("hm"),
        "best_template": r.get("best_template"),
        "llm_calls": r.get("llm_calls"),
        "llm_tokens_in": tin,
        "llm_tokens_out": tout,
        "cost_usd": None if cost is None else round(cost, 6),
        "seconds": round(outcome.seconds, 3),
        "images_encoded": outcome.images_encoded,
        "prompts_encoded": outcome.prompts_encoded,
    }


def latest_lines(path: Path, key: str) -> dict[str, dict[str, Any]]:
    """The last line of each ``key`` value in an append-only ``.jsonl`` record (a torn last line
    is ignored), so a record rewritten by a rerun counts once."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in read_jsonl(path):
        if isinstance(rec, dict) and key in rec:
            latest[rec[key]] = rec
    return latest


def read_records(benchdir: Path) -> dict[str, dict[str, Any]]:
    """The last ``cells.jsonl`` line of each cell id."""
    return latest_lines(benchdir / CELLS_FILE, "cell_id")


def append_record(benchdir: Path, record: dict[str, Any]) -> None:
    append_jsonl(benchdir / CELLS_FILE, record)


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellPlan:
    """What to do with one cell: ``skip`` (recorded done), ``record`` (its run finished but
    the line was not written yet), ``resume``, ``new``, or ``changed`` (refused)."""

    cell: Cell
    action: str
    rundir: str  # relative to BENCHDIR
    reason: str = ""


def _run_config(run: Path) -> dict[str, Any] | None:
    from ipo_vlm.runs.run import Run

    return Run.open(run).config_dict if (run / "config.json").exists() else None


def _finished(run: Path) -> dict[str, Any] | None:
    from ipo_vlm.runs.run import Run

    return Run.open(run).result_dict if run.is_dir() else None


def plan_cell(cell: Cell, benchdir: Path, records: dict[str, dict[str, Any]], force: bool) -> CellPlan:
    """Decide a cell's action from ``cells.jsonl`` and its run directory.

    The readable directory ``runs/<name>`` is the cell's home; when it holds a run with other
    settings, the cell is refused, or with ``force`` goes to ``runs/<name>-<id>`` instead."""
    from ipo_vlm.runs.rundir import config_differences

    rec = records.get(cell.cell_id)
    if rec and rec.get("status") == "done":
        return CellPlan(cell, "skip", rec["rundir"])
    home = f"{RUNS_DIR}/{cell.name}"
    alt = f"{home}-{cell.cell_id[:8]}"
    changed = ""
    for rel in (home, alt):
        old = _run_config(benchdir / rel)
        if old is None:
            if rel == home or force:
                return CellPlan(cell, "new", rel)
            continue
        diffs = config_differences(old, cell.config)
        if not diffs:
            return CellPlan(cell, "record" if _finished(benchdir / rel) else "resume", rel)
        if rel == home:
            changed = ", ".join(f"{d} {_at(old, d)!r} -> {_at(cell.config, d)!r}" for d in diffs[:3])
            if len(diffs) > 3:
                changed += f" (+{len(diffs) - 3} more)"
    if force:
        return CellPlan(cell, "new", alt)
    return CellPlan(cell, "changed", home, changed)


def _at(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def refuse_changed(plans: Sequence[CellPlan]) -> None:
    """One clear line when any cell's settings changed since it ran."""
    changed = [p for p in plans if p.action == "changed"]
    if changed:
        first = changed[0]
        more = f" and {len(changed) - 1} more cell(s)" if len(changed) > 1 else ""
        raise ConfigError(
            f"cell {first.cell.name}{more}: settings changed since it ran ({first.reason}); "
            "pass --force to run changed cells into new cell directories, or restore the grid"
        )
