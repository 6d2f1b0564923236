"""The benchmark's tables, rebuilt from ``cells.jsonl`` (and ``transfer.jsonl``) after every cell.

- ``table.md`` / ``table.csv``: per dataset, shots and method, base / novel / H as mean ± sd
  over seeds, the average over the grid's datasets (H of the mean base and novel, the
  convention of the base-to-novel papers), and published reference rows where dataset, shots
  and backbone match;
- ``paired.csv``: per method, the paired difference to ``handcrafted`` and to ``random`` over
  cells of the same dataset, shots and seed;
- ``cost.csv``: per method, LLM calls, tokens, estimated cost, wall time, images and prompts
  encoded, and H gained over ``handcrafted`` per 1,000 tokens and per dollar;
- ``transfer.md`` / ``transfer.csv`` when the grid has a transfer section.

Files hold fractions; the markdown shows percentages."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ipo_vlm.benchmark.references import COOP_11, ReferenceRow, references_for
from ipo_vlm.io.jsonio import atomic_write_bytes
from ipo_vlm.methods.base import REFERENCES


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Mean, sample standard deviation (None below two values) and count."""
    n = len(values)
    if n == 0:
        return None, None, 0
    m = sum(values) / n
    if n < 2:
        return m, None, n
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)), n


def hmean(b: float, n: float) -> float:
    return 2 * b * n / (b + n) if b + n > 0 else 0.0


def pct(m: float | None, sd: float | None = None, digits: int = 2) -> str:
    if m is None:
        return "–"
    text = f"{100 * m:.{digits}f}"
    return f"{text} ± {100 * sd:.{digits}f}" if sd is not None else text


def pts(m: float | None, sd: float | None = None) -> str:
    """A difference of fractions, shown in percentage points with a sign."""
    if m is None:
        return "–"
    text = f"{100 * m:+.2f}"
    return f"{text} ± {100 * sd:.2f}" if sd is not None else text


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "–" if x is None else fmt.format(x)


def _csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue().encode("utf-8")


class Tables:
    """Aggregates over the grid's finished cells (records of other grids are ignored)."""

    def __init__(self, grid: Any, records: dict[str, dict[str, Any]], prices: Any) -> None:
        self.grid = grid
        self.prices = prices
        self.cells = grid.cells()
        ids = {c.cell_id for c in self.cells}
        self.records = [records[c.cell_id] for c in self.cells if c.cell_id in records and c.cell_id in ids]
        self.done = [r for r in self.records if r["status"] == "done"]
        self.by_key = {(r["dataset"], r["shots"], r["seed"], r["method"]): r for r in self.done}

    # -- base / novel / H ----------------------------------------------------------------------

    def _group(self, dataset: str, shots: int, method: str) -> list[dict[str, Any]]:
        return [self.by_key[k] for k in ((dataset, shots, s, method) for s in self.grid.seeds) if k in self.by_key]

    def result_rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        labels = [d.label for d in self.grid.datasets]
        names = {d.label: d.name for d in self.grid.datasets}
        for shots in self.grid.shots:
            for label in labels:
                vlms = set()
                for method in self.grid.methods:
                    group = self._group(label, shots, method)
                    if group:
                        vlms |= {r["vlm"] for r in group}
                        rows.append(self._row("ours", label, shots, method, group))
                rows.extend(self._ref_row(label, shots, ref) for vlm in sorted(vlms) for ref in references_for(names[label], shots, vlm))
            rows.extend(self._average_rows(shots, labels, names))
        return rows

    def _row(self, kind: str, dataset: str, shots: int, method: str, group: list[dict[str, Any]]) -> dict[str, Any]:
        row: dict[str, Any] = {"kind": kind, "dataset": dataset, "shots": shots, "method": method, "source": ""}
        for key, field in (("base", "base_acc"), ("novel", "novel_acc"), ("hm", "hm")):
            m, sd, n = mean_sd([r[field] for r in group])
            row[f"{key}_mean"], row[f"{key}_sd"], row["n"] = m, sd, n
        return row

    @staticmethod
    def _ref_row(dataset: str, shots: int, ref: ReferenceRow) -> dict[str, Any]:
        return {"kind": "reference", "dataset": dataset, "shots": shots, "method": ref.method, "n": None,
                "base_mean": ref.base, "novel_mean": ref.novel, "hm_mean": ref.hm,
                "source": ref.source + (f" ({ref.note})" if ref.note else "")}

    def _average_rows(self, shots: int, labels: list[str], names: dict[str, str]) -> list[dict[str, Any]]:
        """Per method, the average over all the grid's datasets once each has that method and
        shots; over seeds that every dataset has, H of the mean base and novel per seed."""
        if len(labels) < 2:
            return []
        rows = []
        eleven = sorted(names.values()) == sorted(COOP_11)
        label = "average (11 datasets)" if eleven else f"average ({len(labels)} datasets)"
        vlms: set[str] = set()
        for method in self.grid.methods:
            seeds = [s for s in self.grid.seeds if all((d, shots, s, method) in self.by_key for d in labels)]
            if not seeds:
                continue
            per_seed = []
            for s in seeds:
                recs = [self.by_key[(d, shots, s, method)] for d in labels]
                vlms |= {r["vlm"] for r in recs}
                b = sum(r["base_acc"] for r in recs) / len(recs)
                n = sum(r["novel_acc"] for r in recs) / len(recs)
                per_seed.append((b, n, hmean(b, n)))
            row: dict[str, Any] = {"kind": "average", "dataset": label, "shots": shots, "method": method, "source": ""}
            for i, key in enumerate(("base", "novel", "hm")):
                row[f"{key}_mean"], row[f"{key}_sd"], row["n"] = mean_sd([p[i] for p in per_seed])
            rows.append(row)
        if eleven:
            rows.extend(self._ref_row(label, shots, ref) for vlm in sorted(vlms) for ref in references_for("average", shots, vlm))
        return rows

    # -- paired differences and cost -----------------------------------------------------------

    def paired(self, method: str, shots: int, vs: str) -> dict[str, Any]:
        pairs = [(r, self.by_key.get((r["dataset"], shots, r["seed"], vs)))
                 for r in self.done if r["method"] == method and r["shots"] == shots]
        pairs = [(a, b) for a, b in pairs if b is not None]
        row: dict[str, Any] = {"shots": shots, "method": method, "vs": vs}
        for key, field in (("base", "base_acc"), ("novel", "novel_acc"), ("hm", "hm")):
            row[f"d_{key}_mean"], row[f"d_{key}_sd"], row["n"] = mean_sd([a[field] - b[field] for a, b in pairs])
        return row

    def paired_rows(self) -> list[dict[str, Any]]:
        return [self.paired(m, s, vs) for s in self.grid.shots for m in self.grid.methods
                for vs in REFERENCES if vs != m and m != REFERENCES[0] and vs in self.grid.methods]

    def cost_rows(self) -> list[dict[str, Any]]:
        rows = []
        for shots in self.grid.shots:
            for method in self.grid.methods:
                group = [r for r in self.done if r["method"] == method and r["shots"] == shots]
                if not group:
                    continue

                def avg(field: str) -> float | None:
                    vals = [r[field] for r in group if r.get(field) is not None]
                    return sum(vals) / len(vals) if vals else None

                tokens = sum((r.get("llm_tokens_in") or 0) + (r.get("llm_tokens_out") or 0) for r in group) / len(group)
                cost = avg("cost_usd") if all(r.get("cost_usd") is not None for r in group) else None
                zero = REFERENCES[0]  # the gain per token is measured over the method that searches nothing
                gain = self.paired(method, shots, zero)["d_hm_mean"] if method != zero and zero in self.grid.methods else None
                rows.append({
                    "shots": shots, "method": method, "cells": len(group),
                    "llm_calls": avg("llm_calls"), "llm_tokens_in": avg("llm_tokens_in"), "llm_tokens_out": avg("llm_tokens_out"),
                    "cost_usd": cost, "seconds": avg("seconds"),
                    "images_encoded": sum(r.get("images_encoded") or 0 for r in group),
                    "prompts_encoded": sum(r.get("prompts_encoded") or 0 for r in group),
                    "d_hm_vs_handcrafted": gain,
                    "d_hm_per_1k_tokens": gain / (tokens / 1000) if gain is not None and tokens > 0 else None,
                    "d_hm_per_usd": gain / cost if gain is not None and cost else None,
                })
        return rows

    # -- markdown --------------------------------------------------------------------------------

    def markdown(self) -> str:
        failed = [r for r in self.records if r["status"] == "failed"]
        out = [
            "# Benchmark results", "",
            f"{len(self.done)} of {len(self.cells)} cells done, {len(failed)} failed. "
            "Test accuracy in %, mean ± sd over seeds (n = seeds); averages use H of the mean base and novel.", "",
        ]
        rows = self.result_rows()
        sources: dict[str, int] = {}
        for shots in self.grid.shots:
            out += [f"## {shots} shot{'s' if shots != 1 else ''}", "", "| dataset | method | n | base | novel | H |", "|---|---|---|---|---|---|"]
            for r in (r for r in rows if r["shots"] == shots):
                method = r["method"]
                if r["kind"] == "reference":
                    ref = sources.setdefault(r["source"], len(sources) + 1)
                    method = f"*{method}* [{ref}]"
                    out.append(f"| {r['dataset']} | {method} | | {pct(r['base_mean'])} | {pct(r['novel_mean'])} | {pct(r['hm_mean'])} |")
                else:
                    name = f"**{r['dataset']}**" if r["kind"] == "average" else r["dataset"]
                    out.append(f"| {name} | {method} | {r['n']} | {pct(r['base_mean'], r['base_sd'])} | "
                               f"{pct(r['novel_mean'], r['novel_sd'])} | {pct(r['hm_mean'], r['hm_sd'])} |")
            out.append("")
        if sources:
            out += ["Reference rows (CLIP ViT-B/16, as published):", ""]
            out += [f"{i}. {s}" for s, i in sources.items()] + [""]
        paired = self.paired_rows()
        if paired:
            out += ["## Paired differences", "",
                    "Per method, minus the control on the same dataset, shots and seed; points, mean ± sd over the pairs.", "",
                    "| shots | method | vs | pairs | Δ base | Δ novel | Δ H |", "|---|---|---|---|---|---|---|"]
            out += [f"| {p['shots']} | {p['method']} | {p['vs']} | {p['n']} | {pts(p['d_base_mean'], p['d_base_sd'])} | "
                    f"{pts(p['d_novel_mean'], p['d_novel_sd'])} | {pts(p['d_hm_mean'], p['d_hm_sd'])} |" for p in paired]
            out.append("")
        out += self._cost_markdown() + self._cells_markdown()
        return "\n".join(out) + "\n"

    def _cost_markdown(self) -> list[str]:
        rows = self.cost_rows()
        if not rows:
            return []
        date = f" (prices of {self.prices.date}" + (f"; overridden: {', '.join(self.prices.overridden)}" if self.prices.overridden else "") + ")"
        out = ["## Cost and benefit", "",
               f"Mean per cell{date}; images and prompts encoded are totals over the cells (the caches answer the rest).", "",
               "| shots | method | cells | LLM calls | tokens in | tokens out | cost USD | wall s | images enc. | prompts enc. | Δ H vs handcrafted | Δ H per 1k tokens | Δ H per $ |",
               "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(
                f"| {r['shots']} | {r['method']} | {r['cells']} | {_num(r['llm_calls'], '{:,.1f}')} | {_num(r['llm_tokens_in'])} | "
                f"{_num(r['llm_tokens_out'])} | {_num(r['cost_usd'], '{:.4f}')} | {_num(r['seconds'], '{:.1f}')} | "
                f"{r['images_encoded']:,} | {r['prompts_encoded']:,} | {pts(r['d_hm_vs_handcrafted'])} | "
                f"{pts(r['d_hm_per_1k_tokens'])} | {pts(r['d_hm_per_usd'])} |")
        total_s = sum(r.get("seconds") or 0 for r in self.records)
        total_cost = [r["cost_usd"] for r in self.done if r.get("cost_usd") is not None]
        out += ["", f"All cells: {sum(r.get('llm_calls') or 0 for r in self.done):,} LLM calls, "
                f"{sum((r.get('llm_tokens_in') or 0) + (r.get('llm_tokens_out') or 0) for r in self.done):,} tokens, "
                f"${sum(total_cost):.4f}, {total_s:.0f} s of cell time, "
                f"{sum(r.get('images_encoded') or 0 for r in self.records):,} images encoded over {len(self.records)} cells.", ""]
        return out

    def _cells_markdown(self) -> list[str]:
        out = ["## Cells", "", "| cell | status | H | base | novel | LLM calls | tokens | cost USD | wall s | images enc. | prompts enc. |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.records:
            tokens = (r.get("llm_tokens_in") or 0) + (r.get("llm_tokens_out") or 0)
            status = r["status"] if r["status"] == "done" else f"failed: {r.get('error')}"
            out.append(f"| {r['name']} | {status} | {pct(r.get('hm'))} | {pct(r.get('base_acc'))} | {pct(r.get('novel_acc'))} | "
                       f"{_num(r.get('llm_calls'))} | {tokens:,} | {_num(r.get('cost_usd'), '{:.4f}')} | {r.get('seconds', 0):.1f} | "
                       f"{r.get('images_encoded') or 0:,} | {r.get('prompts_encoded') or 0:,} |")
        return out


RESULT_COLUMNS = ("kind", "dataset", "shots", "method", "n", "base_mean", "base_sd", "novel_mean", "novel_sd", "hm_mean", "hm_sd", "source")
PAIRED_COLUMNS = ("shots", "method", "vs", "n", "d_base_mean", "d_base_sd", "d_novel_mean", "d_novel_sd", "d_hm_mean", "d_hm_sd")
COST_COLUMNS = ("shots", "method", "cells", "llm_calls", "llm_tokens_in", "llm_tokens_out", "cost_usd", "seconds",
                "images_encoded", "prompts_encoded", "d_hm_vs_handcrafted", "d_hm_per_1k_tokens", "d_hm_per_usd")


def write_tables(benchdir: Path, grid: Any, records: dict[str, dict[str, Any]], prices: Any,
                 transfer: dict[str, dict[str, Any]] | None = None) -> None:
    """(Re)write every table of ``benchdir`` atomically."""
    t = Tables(grid, records, prices)
    atomic_write_bytes(benchdir / "table.md", t.markdown().encode("utf-8"))
    atomic_write_bytes(benchdir / "table.csv", _csv(t.result_rows(), RESULT_COLUMNS))
    atomic_write_bytes(benchdir / "paired.csv", _csv(t.paired_rows(), PAIRED_COLUMNS))
    atomic_write_bytes(benchdir / "cost.csv", _csv(t.cost_rows(), COST_COLUMNS))
    if grid.transfer is not None:
        md, rows = transfer_tables(grid, transfer or {})
        atomic_write_bytes(benchdir / "transfer.md", md.encode("utf-8"))
        atomic_write_bytes(benchdir / "transfer.csv", _csv(rows, TRANSFER_COLUMNS))


TRANSFER_COLUMNS = ("source", "shots", "method", "target", "n", "acc_mean", "acc_sd")


def transfer_tables(grid: Any, records: dict[str, dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Per method and shots: each target's test accuracy, mean ± sd over seeds, and the mean
    over targets."""
    spec = grid.transfer
    ids = {c.cell_id for c in grid.cells() if c.dataset == spec.source}
    done = [r for r in records.values() if r.get("status") == "done" and r["source_cell_id"] in ids]
    targets = [t.label for t in spec.targets]
    rows = []
    md = [f"# Transfer from {spec.source}", "",
          "The template each source cell found, applied unchanged to every target's test split (all classes). "
          "Accuracy in %, mean ± sd over seeds.", "",
          "| shots | method | " + " | ".join(targets) + " | average |", "|---|---|" + "---|" * (len(targets) + 1)]
    for shots in grid.shots:
        for method in grid.methods:
            cells = []
            per_seed_avg: dict[int, list[float]] = {}
            for target in targets:
                accs = [r["acc"] for r in done if r["shots"] == shots and r["method"] == method and r["target"] == target]
                for r in done:
                    if r["shots"] == shots and r["method"] == method and r["target"] == target:
                        per_seed_avg.setdefault(r["seed"], []).append(r["acc"])
                m, sd, n = mean_sd(accs)
                rows.append({"source": spec.source, "shots": shots, "method": method, "target": target, "n": n, "acc_mean": m, "acc_sd": sd})
                cells.append(pct(m, sd))
            full = [sum(v) / len(v) for v in per_seed_avg.values() if len(v) == len(targets)]
            am, asd, _ = mean_sd(full)
            if any(c != "–" for c in cells):
                md.append(f"| {shots} | {method} | " + " | ".join(cells) + f" | {pct(am, asd)} |")
    failed = [r for r in records.values() if r.get("status") == "failed" and r["source_cell_id"] in ids]
    if failed:
        md += ["", "Failed evaluations:", ""] + [f"- {r['name']} -> {r['target']}: {r['error']}" for r in failed]
    return "\n".join(md) + "\n", rows
