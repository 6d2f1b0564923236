"""Reading a run directory for the report: nothing but the files, no model, no LLM.

The report shows runs still in progress too, so it opens them with
:meth:`ipo_vlm.runs.run.Run.open`, which reads missing optional files as empty."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import read_jsonl
from ipo_vlm.runs.run import Run


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (``cells.jsonl``); a torn last line is skipped."""
    try:
        return [r for r in read_jsonl(path) if isinstance(r, dict)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


@dataclass
class ReportInput:
    """A run and what the report adds to its records: ``explain.json`` and the files' sizes."""

    run: Run
    explain: dict[str, Any] | None = None
    sizes: dict[str, int] = field(default_factory=dict)


def load_run(path: str | Path) -> ReportInput:
    p = Path(path)
    if not (p / "config.json").exists():
        raise ConfigError(f"{p} is not a run directory (no config.json) nor a benchmark directory (no cells.jsonl)")
    run = Run.open(p)
    return ReportInput(run, run.read_extra("explain.json"), {f.name: f.stat().st_size for f in sorted(p.iterdir()) if f.is_file()})
