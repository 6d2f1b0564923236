"""Reading a run directory's files for the report: nothing but the files, no model, no LLM.

Optional files may be missing (a run still in progress has no ``result.json``); a file that
exists but is not JSON is a clear ``ConfigError``. JSON-lines files tolerate a torn last line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import read_jsonl


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when the file does not exist."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def read_lines(path: Path) -> list[dict[str, Any]]:
    try:
        return [r for r in read_jsonl(path) if isinstance(r, dict)]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


@dataclass
class RunFiles:
    """Everything a run directory records."""

    path: Path
    config: dict[str, Any]
    created: str | None = None
    split: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    descriptions: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    explain: dict[str, Any] | None = None
    sizes: dict[str, int] = field(default_factory=dict)


def _dict_or_none(value: Any, path: Path) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return value


def load_run(path: str | Path) -> RunFiles:
    p = Path(path)
    raw = _dict_or_none(read_json(p / "config.json"), p / "config.json")
    if raw is None:
        raise ConfigError(f"{p} is not a run directory (no config.json) nor a benchmark directory (no cells.jsonl)")
    config = raw.get("config") if isinstance(raw.get("config"), dict) else raw
    history = [r for r in read_lines(p / "history.jsonl") if {"step", "template", "train_acc", "train_loss"} <= set(r)]
    return RunFiles(
        path=p,
        config=config,
        created=raw.get("created"),
        split=_dict_or_none(read_json(p / "split.json"), p / "split.json"),
        history=history,
        steps=[r for r in read_lines(p / "steps.jsonl") if "step" in r],
        calls=read_lines(p / "llm_calls.jsonl"),
        descriptions=[r for r in read_lines(p / "descriptions.jsonl") if "text" in r],
        result=_dict_or_none(read_json(p / "result.json"), p / "result.json"),
        explain=_dict_or_none(read_json(p / "explain.json"), p / "explain.json"),
        sizes={f.name: f.stat().st_size for f in sorted(p.iterdir()) if f.is_file()},
    )
