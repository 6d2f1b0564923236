"""``ipo report``: one self-contained HTML page (inline styles and PNG plots, no scripts, no
network) made from a run directory's files, or from a benchmark directory's ``cells.jsonl``."""

from __future__ import annotations

import logging
from pathlib import Path

from ipo_vlm.errors import ConfigError

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"


def is_bench_dir(path: str | Path) -> bool:
    return (Path(path) / "cells.jsonl").is_file()


def _write(out: Path, text: str) -> Path:
    from ipo_vlm.io.jsonio import atomic_write_bytes
    from ipo_vlm.io.paths import check_output_path

    check_output_path(out, "--out")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give a file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, text.encode("utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot write the report to {out}: {e.strerror or e}") from None
    return out


def build_run_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of one run directory (default ``RUN/report.html``); returns its path."""
    from ipo_vlm.report.load import load_run
    from ipo_vlm.report.run import render_run

    files = load_run(run)
    return _write(Path(out) if out else Path(run) / REPORT_NAME, render_run(files))


def build_bench_report(bench: str | Path, out: str | Path | None = None) -> Path:
    """Write a benchmark directory's report and each finished cell's own report."""
    from ipo_vlm.report.bench import load_cells, render_bench

    bench = Path(bench)
    target = Path(out) if out else bench / REPORT_NAME
    cells = load_cells(bench)

    def write_cell(rundir: Path) -> Path | None:
        try:
            return build_run_report(rundir)
        except ConfigError as e:  # one broken cell must not hide the others
            log.warning("no report for %s: %s", rundir, e)
            return None

    return _write(target, render_bench(bench, target, cells, write_cell))


def build_report(path: str | Path, out: str | Path | None = None) -> Path:
    """The report of a run directory or a benchmark directory, whichever ``path`` is."""
    p = Path(path)
    if not p.is_dir():
        raise ConfigError(f"{p} is not a directory: give a run directory or a benchmark directory")
    return build_bench_report(p, out) if is_bench_dir(p) else build_run_report(p, out)


__all__ = ["REPORT_NAME", "build_bench_report", "build_report", "build_run_report", "is_bench_dir"]
