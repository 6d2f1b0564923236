"""`ipo benchmark GRID.yaml --out BENCHDIR`: run a grid of cells (dataset x shots x seed x
method), resumably, and write the tables (see ipo_vlm.benchmark)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    from ipo_vlm.cli.optimize import add_set_arg

    p = sub.add_parser("benchmark", help="run a grid of datasets x shots x seeds x methods into one table", description=__doc__)
    p.add_argument("grid", metavar="GRID.yaml", help="the grid file (datasets, shots, seeds, methods, settings)")
    p.add_argument("--out", required=True, metavar="BENCHDIR", help="benchmark directory (created; rerun to resume)")
    p.add_argument("--executor", choices=("local", "ray"), default="local", help="where cells run (default: local)")
    p.add_argument("--jobs", type=int, default=1, help="local processes in parallel (with ray: CPUs of a local instance)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--dry-run", action="store_true", help="check every cell's dataset and backends, then print cells, LLM calls, tokens and estimated cost, and the images and prompts to encode with their time measured here (exit 2 if a cell cannot run)")
    add_set_arg(p)
    p.add_argument("--force", action="store_true", help="run cells whose settings changed into new cell directories")
    p.add_argument("--track", default=None, metavar="TRACKER",
                   help="report the grid to a tracker: mlflow (a parent run, one nested run per cell) or none; overrides the grid's tracking")
    p.set_defaults(func=run)


def _print_dry_run(plan: dict[str, Any]) -> None:
    rows = plan["rows"]
    print(f"{plan['cells']} cells: {plan['skip']} finished, {len(rows)} to run")
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    total_cost: float | None = 0.0
    print(f"{'method':<12}{'cells':>6}{'LLM calls':>16}{'tokens in':>12}{'tokens out':>12}{'cost USD':>11}  LLM")
    for method, group in by_method.items():
        ok = [r for r in group if "error" not in r]
        costs = [r["cost_usd"] for r in ok]
        cost = None if any(c is None for c in costs) else sum(costs)
        total_cost = None if cost is None or total_cost is None else total_cost + cost
        calls = f"{sum(r['calls_min'] for r in ok)}-{sum(r['calls_max'] for r in ok)}"
        llms = ", ".join(sorted({r["llm"] for r in group}))
        print(f"{method:<12}{len(group):>6}{calls:>16}{sum(r['tokens_in'] for r in ok):>12,}{sum(r['tokens_out'] for r in ok):>12,}"
              f"{'?' if cost is None else f'{cost:.2f}':>11}  {llms}")
    for r in rows:
        if "error" in r:
            print(f"cannot run {r['name']}: {r['error']}")
    cost_text = "unknown (a model has no price; add it under prices: in the grid)" if total_cost is None else f"~${total_cost:.2f}"
    print(f"estimated cost: {cost_text} (prices of {plan['prices_date']}; a method that runs no LLM costs nothing)")
    if plan.get("compute") is not None:
        print("\n".join(plan["compute"].lines()))


def _line(rec: dict[str, Any]) -> str:
    if rec["status"] != "done":
        return f"failed {rec['name']}: {rec['error']}"
    tokens = (rec.get("llm_tokens_in") or 0) + (rec.get("llm_tokens_out") or 0)
    return (f"done   {rec['name']}: H {100 * rec['hm']:.2f}% (base {100 * rec['base_acc']:.2f}, novel {100 * rec['novel_acc']:.2f}) | "
            f"{rec.get('llm_calls') or 0} LLM calls, {tokens:,} tokens | {rec['seconds']:.1f} s | "
            f"{rec['images_encoded']} images encoded")


def _first_error(row: dict[str, Any]) -> str:
    text = " ".join(str(row.get("error")).split())
    return f"{row.get('name', '?')}: {text[:200]}"


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ipo_vlm.benchmark import dry_run, load_grid, make_executor, run_benchmark
    from ipo_vlm.benchmark.runner import Callbacks

    grid = load_grid(args.grid, args.settings)
    if args.track:
        grid = grid.with_settings({"tracking": {"spec": args.track}})
    out = Path(args.out)
    if args.dry_run:
        plan = dry_run(grid, out, args.force)
        _print_dry_run(plan)
        errors = [r for r in plan["rows"] if "error" in r]
        if errors:  # the table went to stdout; the verdict goes where errors go
            print(f"ipo: error: {len(errors)} cell(s) cannot run; the first: {_first_error(errors[0])}", file=sys.stderr)
            return 2
        return 0
    executor = make_executor(args.executor, args.jobs, args.ray_address)
    bar: Any = None

    def planned(plans: list[Any]) -> None:
        nonlocal bar
        todo = sum(p.action in ("new", "resume") for p in plans)
        finished = len(plans) - todo
        print(f"ipo: {len(plans)} cells: {finished} finished, {todo} to run ({executor.name})", file=sys.stderr)
        if todo and sys.stderr.isatty():  # a log file gets the plain lines, not a bar's redraws
            bar = tqdm(total=todo, desc="cells", unit="cell", file=sys.stderr, dynamic_ncols=True)

    def stage(msg: str) -> None:
        (bar.write if bar is not None else print)(f"ipo: {msg}", file=sys.stderr)

    def cell_done(rec: dict[str, Any]) -> None:
        if bar is None:
            print(_line(rec))
            return
        bar.write(_line(rec))
        bar.update(1)

    try:
        s = run_benchmark(grid, out, executor, force=args.force, callbacks=Callbacks(planned, stage, cell_done))
    finally:
        if bar is not None:
            bar.close()
    print(f"\n{s.cells} cells: {s.skipped} already finished, {s.recorded} recorded from finished runs, "
          f"{s.ran} run now ({s.done - s.skipped - s.recorded} done, {s.failed} failed) | {s.seconds:.1f} s")
    print(f"images encoded: {s.images_encoded + s.images_prefetched} for {s.ran} cells run"
          + (f" ({s.images_prefetched} up front, {s.images_encoded} in cells)" if s.images_prefetched else ""))
    if s.transfer_done or s.transfer_failed:
        print(f"transfer: {s.transfer_done} evaluated, {s.transfer_failed} failed (transfer.md)")
    for name, error in s.failures:
        print(f"failed: {name}: {error}")
    print(f"tables: {out / 'table.md'}, {out / 'table.csv'}")
    return 1 if s.failed or s.transfer_failed else 0
