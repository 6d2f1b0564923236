"""The report of a benchmark directory: its table, H per dataset and method, costs, and links to
each cell's own report (written beside the cell's run files)."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import ipo_vlm.report.plots as plots
from ipo_vlm.report.html import Cell, esc, figure, num, page, pct, table
from ipo_vlm.report.load import read_lines

log = logging.getLogger(__name__)


def load_cells(bench: Path) -> list[dict[str, Any]]:
    return [c for c in read_lines(bench / "cells.jsonl") if isinstance(c.get("name", c.get("cell_id")), (str, int))]


def _mean_std(xs: Sequence[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0


def _group_key(cell: dict[str, Any], several_shots: bool) -> str:
    ds = str(cell.get("dataset", "?"))
    return f"{ds} {cell.get('shots')}-shot" if several_shots else ds


def cell_run_dir(bench: Path, cell: dict[str, Any]) -> Path | None:
    """The cell's run directory, if it is a relative path inside the benchmark directory."""
    rel = cell.get("rundir")
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        return None
    path = (bench / rel).resolve()
    root = bench.resolve()
    if root != path and root not in path.parents:
        return None
    return path if (path / "config.json").is_file() else None


def render_bench(bench: Path, out: Path, cells: list[dict[str, Any]], write_cell: Callable[[Path], Path | None]) -> str:
    """The benchmark page; ``write_cell(rundir)`` writes a cell's report and returns its path."""
    done = [c for c in cells if c.get("status") == "done" and isinstance(c.get("hm"), (int, float))]
    several_shots = len({c.get("shots") for c in cells}) > 1
    methods = list(dict.fromkeys(str(c.get("method", "?")) for c in cells))
    parts = [f"<h1>ipo benchmark: {esc(bench.name)}</h1>",
             f'<p class="meta">{len(cells)} cells · {len(done)} done · {len(cells) - len(done)} failed or unfinished</p>']
    parts.append("<h2>Benchmark table</h2>")
    parts.append(_table_csv(bench) or _aggregate(done, several_shots))
    groups: dict[str, dict[str, list[float]]] = {}
    for c in done:
        groups.setdefault(_group_key(c, several_shots), {}).setdefault(str(c.get("method")), []).append(float(c["hm"]))
    if groups:
        means = {g: {m: sum(v) / len(v) for m, v in by.items()} for g, by in groups.items()}
        parts.append("<h2>H per dataset and method</h2>")
        parts.append('<div class="plots">' + figure(plots.bench_plot(means, methods), "Mean H over the finished cells (seeds).", "H per dataset and method") + "</div>")
    parts.append("<h2>Cost and benefit</h2>")
    parts.append(_costs(cells, methods))
    parts.append("<h2>Cells</h2>")
    parts.append(_cells(bench, out, cells, write_cell))
    md = bench / "table.md"
    if md.is_file():
        parts.append(f"<details><summary>table.md</summary><pre>{esc(md.read_text(encoding='utf-8', errors='replace'))}</pre></details>")
    return page(f"ipo benchmark: {bench.name}", "\n".join(parts))


def _table_csv(bench: Path) -> str | None:
    path = bench / "table.csv"
    if not path.is_file():
        return None
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8", errors="replace"))))
    if not rows:
        return None
    head, body = rows[0], rows[1:]
    numeric = [i for i in range(len(head)) if body and all(_is_number(r[i]) for r in body if i < len(r) and r[i] != "")]
    width = len(head)
    return table(head, [(r + [""] * width)[:width] for r in body], numeric=numeric, id="bench-table")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _aggregate(done: Sequence[dict[str, Any]], several_shots: bool) -> str:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in done:
        groups.setdefault((_group_key(c, several_shots), str(c.get("method"))), []).append(c)
    rows = []
    for (ds, method), cs in groups.items():
        row: list[Any] = [ds, method, len(cs)]
        for key in ("base_acc", "novel_acc", "hm"):
            m, s = _mean_std([float(c[key]) for c in cs if isinstance(c.get(key), (int, float))] or [0.0])
            row.append(f"{100 * m:.1f} ± {100 * s:.1f}")
        rows.append(row)
    return table(["dataset", "method", "seeds", "base", "novel", "H"], rows, numeric=(2, 3, 4, 5), id="bench-table")


def _costs(cells: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    rows = []
    for method in methods:
        cs = [c for c in cells if str(c.get("method")) == method]
        ok = [c for c in cs if c.get("status") == "done" and isinstance(c.get("hm"), (int, float))]
        h = sum(float(c["hm"]) for c in ok) / len(ok) if ok else None
        tokens = sum(int(c.get("llm_tokens_in") or 0) + int(c.get("llm_tokens_out") or 0) for c in cs)
        usd = sum(float(c.get("cost_usd") or 0) for c in cs)
        minutes = sum(float(c.get("seconds") or 0) for c in cs) / 60
        rows.append([method, f"{len(ok)}/{len(cs)}", Cell(pct(h)), num(tokens), f"{usd:.4f}", num(minutes, 1),
                     num(tokens / len(ok)) if ok else ""])
    return table(["method", "cells done", "mean H", "LLM tokens", "cost (USD)", "minutes", "tokens per cell"], rows,
                 numeric=(2, 3, 4, 5, 6), id="costs")


def _cells(bench: Path, out: Path, cells: Sequence[dict[str, Any]], write_cell: Callable[[Path], Path | None]) -> str:
    rows = []
    for c in cells:
        link: Any = ""
        rundir = cell_run_dir(bench, c)
        if rundir is not None:
            written = write_cell(rundir)
            if written is not None:
                href = quote(os.path.relpath(written, out.parent.resolve()).replace(os.sep, "/"))
                link = Cell(f'<a href="{esc(href)}">report</a>')
        status = c.get("status", "")
        if status != "done" and c.get("error"):
            status = f"{status}: {c['error']}"
        rows.append([c.get("name", c.get("cell_id")), c.get("dataset"), c.get("shots"), c.get("seed"), c.get("method"), status,
                     Cell(pct(c.get("base_acc"))), Cell(pct(c.get("novel_acc"))), Cell(pct(c.get("hm"))),
                     num(int(c.get("llm_tokens_in") or 0) + int(c.get("llm_tokens_out") or 0)),
                     f"{float(c.get('cost_usd') or 0):.4f}", num(float(c.get("seconds") or 0), 0), link])
    return table(["cell", "dataset", "shots", "seed", "method", "status", "base", "novel", "H", "tokens", "USD", "seconds", "report"],
                 rows, numeric=(2, 3, 6, 7, 8, 9, 10, 11), id="cells")
