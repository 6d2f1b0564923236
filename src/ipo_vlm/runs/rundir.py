"""The run directory: the durable record of one optimization run, and enough to resume it.

Every file is append-only (``.jsonl``, one ``fsync``-ed line per record) or written atomically
(``.json``), so a run killed at any instant leaves files that a resumed run can trust:

- ``config.json``       resolved settings, package versions, meta-prompt version
- ``split.json``        the few-shot files and the base/novel class lists
- ``history.jsonl``     one line per scored template (seeds and LLM candidates)
- ``steps.jsonl``       one line per *finished* step: the resume point and per-step parse stats
- ``llm_calls.jsonl``   one line per LLM call (written by the LLM session)
- ``descriptions.jsonl`` image descriptions (written by the captioner stage)
- ``result.json``       the selected template and its base/novel/H evaluation

``history.jsonl`` keeps exactly one kind of line (a scored template) so that anything reading
it never has to skip markers; step completion lives in ``steps.jsonl`` instead.
"""

from __future__ import annotations

import logging
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.jsonio import append_jsonl, atomic_write_json, numbered_jsonl, read_jsonl, repair_jsonl, warn_once
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.scored import ScoredTemplate

log = logging.getLogger(__name__)

#: settings that a resumed run may change; everything else must match the original run
RESUMABLE_CHANGES = frozenset({
    "optimize.steps", "optimize.max_llm_tokens", "llm.use_cache",
    # where and in what batches the VLM runs does not change what the run is
    "vlm_options.device", "vlm_options.batch_size", "vlm_options.text_batch_size",
    # evaluated after the search, from what it recorded
    "optimize.ensemble", "optimize.control",
})
_VERSIONED_PACKAGES = ("ipo-vlm", "numpy", "torch", "transformers", "openai", "llama_cpp_python", "pillow")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that can change a run's numbers (read from metadata,
    so nothing heavy is imported)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Dotted names of the settings that differ between two ``RunConfig.to_dict()`` dicts
    (where the run is reported, ``tracking``, is not what it is: never a difference)."""
    from ipo_vlm.config import identity

    a, b = _flatten(identity(old)), _flatten(identity(new))
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


class RunDir:
    """Paths and record I/O of one run directory. Creating the object touches nothing on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config_path = self.path / "config.json"
        self.split_path = self.path / "split.json"
        self.history_path = self.path / "history.jsonl"
        self.steps_path = self.path / "steps.jsonl"
        self.llm_calls_path = self.path / "llm_calls.jsonl"
        self.descriptions_path = self.path / "descriptions.jsonl"
        self.result_path = self.path / "result.json"
        self.resumes_path = self.path / "resumes.jsonl"
        #: the settings the last ``prepare(resume=True)`` changed: {dotted name: [old, new]}
        self.changes: dict[str, list[Any]] = {}

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- opening -----------------------------------------------------------------------------

    def prepare(self, config: dict[str, Any], resume: bool, prompt_version: str) -> dict[str, Any] | None:
        """Check the directory against ``resume`` and write or update ``config.json``.

        Returns the run's config section (as extended so far) when resuming, else ``None``. A
        fresh run refuses a directory that already holds a run — unless that run stopped before
        its first step, when nothing was computed that a fresh start would lose. A resumed one
        refuses a different config, except for :data:`RESUMABLE_CHANGES`; those are appended to
        ``resumes.jsonl`` (``config.json`` stays as the run first recorded it)."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} exists and is not a directory")
        self.changes = {}
        if not resume:
            if self.config_path.exists():
                if self.last_step_done() >= 0 or self.result_path.exists():
                    raise ConfigError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
                log.info("%s holds a run that stopped before its first step; starting it again", self.path)
                self._clear()
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_config(config, prompt_version, created=_now())
            return None
        old = self.read_config()
        old_config = old["config"]
        edited = self._accept_edits(old, old_config, config)
        before, after = _flatten(_with_defaults(old_config)), _flatten(_with_defaults(config))
        names = config_differences(_with_defaults(old_config), _with_defaults(config))
        diffs = [d for d in names if d not in RESUMABLE_CHANGES]
        if old.get("prompt_version") != prompt_version:
            diffs.append("prompt_version")
        if diffs:
            raise ConfigError(f"cannot resume {self.path}: settings differ from the run's config.json: {', '.join(diffs)}")
        done = self.last_step_done()
        if "optimize.steps" in names and after["optimize.steps"] < done:
            raise ConfigError(f"{self.path} has done {done} steps; --steps {after['optimize.steps']} cannot undo them")
        for p in (self.history_path, self.steps_path, self.llm_calls_path, self.descriptions_path, self.resumes_path):
            repair_jsonl(p)  # a kill mid-append leaves a torn line; later appends need a fresh one
        if names or edited:
            self.changes = {n: [before.get(n), after.get(n)] for n in names} | edited
            record = {"time": _now(), "changes": self.changes}
            if edited:
                record["edited_in_config_json"] = sorted(edited)
            append_jsonl(self.resumes_path, record)
        return old_config

    def _accept_edits(self, old: dict[str, Any], old_config: dict[str, Any], config: dict[str, Any]) -> dict[str, list[Any]]:
        """Settings changed by editing ``config.json`` by hand since the run wrote it (found by the
        fingerprints recorded beside them). One that a resume may change is accepted and returned
        as a change (its earlier value is no longer known: ``None``); any other is refused, since
        the run's records were made under the value it replaced."""
        prints = old.get("fingerprints")
        if not isinstance(prints, dict):
            return {}  # written before fingerprints were recorded: nothing to compare with
        now = _fingerprints(old.get("_as_written", old_config))
        edited = sorted(k for k in set(prints) | set(now) if prints.get(k) != now.get(k))
        from ipo_vlm.config import NOT_IDENTITY

        refused = [k for k in edited if k not in RESUMABLE_CHANGES and k.split(".")[0] not in NOT_IDENTITY]
        if refused:
            raise ConfigError(
                f"cannot resume {self.path}: config.json was edited by hand ({', '.join(refused)}); the run's records were "
                f"made with the settings it recorded: put them back, or start a new run with another --out")
        values = _flatten(config)
        return {k: [None, values.get(k)] for k in edited}

    def _clear(self) -> None:
        """Remove the files of a run that never finished a step (``config.json`` last)."""
        import shutil

        for p in (self.split_path, self.history_path, self.steps_path, self.llm_calls_path, self.descriptions_path,
                  self.resumes_path, self.config_path):
            p.unlink(missing_ok=True)
        shutil.rmtree(self.path / "control", ignore_errors=True)

    def _write_config(self, config: dict[str, Any], prompt_version: str, created: str) -> None:
        # fingerprints of the settings as written: a resume finds which of them were edited by hand
        atomic_write_json(
            self.config_path,
            {"config": config, "prompt_version": prompt_version, "versions": package_versions(), "created": created,
             "fingerprints": _fingerprints(config)},
        )

    def read_config(self) -> dict[str, Any]:
        """The whole ``config.json`` (``config``, ``prompt_version``, ``versions``, ``created``)."""
        if not self.config_path.exists():
            raise ConfigError(f"{self.path} is not a run directory (no config.json)")
        import json

        try:
            raw = json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read {self.config_path}: {e}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("config"), dict):
            raise ConfigError(f"{self.config_path} is not an ipo run config")
        raw["_as_written"] = json.loads(json.dumps(raw["config"]))  # before the resumes' changes
        # the settings in force: as first recorded, then each resume's recorded changes
        for line in read_jsonl(self.resumes_path):
            changes = line.get("changes") if isinstance(line, dict) else None
            for name, change in (changes if isinstance(changes, dict) else {}).items():
                if isinstance(change, list) and len(change) == 2:
                    _set_dotted(raw["config"], name, change[1])
        return raw

    # -- records -----------------------------------------------------------------------------

    def append_history(self, scored: ScoredTemplate) -> None:
        append_jsonl(self.history_path, scored.to_record())

    def history(self) -> list[ScoredTemplate]:
        """Every scored template, in the order recorded."""
        return [ScoredTemplate.from_record(r) for r in self.history_records()]

    def history_records(self) -> list[dict[str, Any]]:
        """The ``history.jsonl`` lines (for readers that show or export them); a line without a
        template or with a score that is not a finite number (a hand edit) is skipped with a warning."""
        return scored_records(self.history_path)

    def append_step(self, record: StepRecord) -> None:
        append_jsonl(self.steps_path, dict(record.__dict__))

    def steps(self) -> list[StepRecord]:
        out = []
        for line, r in numbered_jsonl(self.steps_path):
            try:
                rec = StepRecord(**r)
            except TypeError:
                rec = None
            if rec is None or not isinstance(rec.step, int) or isinstance(rec.step, bool):
                warn_once(self.steps_path, line, "not a step record")
            else:
                out.append(rec)
        return out

    def last_step_done(self) -> int:
        """The highest finished step; -1 when not even the seeds (step 0) are done."""
        done = [s.step for s in self.steps()]
        return max(done) if done else -1

    def llm_tokens_spent(self) -> tuple[int, int]:
        """Tokens in/out of every recorded LLM call, including those of an interrupted step
        (the budget counts what was spent, not what was kept)."""
        tin = tout = 0
        for rec in read_jsonl(self.llm_calls_path):
            tin += int(rec.get("tokens_in") or 0)
            tout += int(rec.get("tokens_out") or 0)
        return tin, tout

    def write_result(self, result: dict[str, Any]) -> None:
        atomic_write_json(self.result_path, result)

    def read_result(self) -> dict[str, Any] | None:
        if not self.result_path.exists():
            return None
        import json

        try:
            raw = json.loads(self.result_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read {self.result_path}: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.result_path} is not a run result (it holds a JSON {type(raw).__name__}); "
                              f"remove it and run ipo optimize --out {self.path} --resume to write it again")
        return raw


def scored_records(path: Path) -> list[dict[str, Any]]:
    """The lines of a ``history.jsonl`` that hold a scored template: a template string and finite
    numbers as scores (NaN is never a score); any other line is skipped with a warning."""
    import math

    out = []
    for line, rec in numbered_jsonl(path):
        scores = [rec.get(k) for k in ("train_acc", "train_loss")] + [rec[k] for k in ("val_acc", "val_loss") if rec.get(k) is not None]
        ok = isinstance(rec.get("template"), str) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in scores)
        if ok:
            out.append(rec)
        else:
            warn_once(path, line, "not a scored template with finite scores")
    return out


def _fingerprints(config: dict[str, Any]) -> dict[str, str]:
    """{dotted setting: 8 hex digits of its value's sha256}."""
    from ipo_vlm.io.hashing import sha256_json

    return {k: sha256_json(v)[:8] for k, v in sorted(_flatten(config).items())}


def _set_dotted(d: dict[str, Any], name: str, value: Any) -> None:
    *sections, key = name.split(".")
    for s in sections:
        d = d.setdefault(s, {})
    d[key] = value


def _with_defaults(recorded: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with the settings added since it was written at their defaults, so
    a run made by an older version still resumes (an unreadable one is compared as recorded)."""
    from ipo_vlm.config import RunConfig

    try:
        return RunConfig.from_dict(recorded).to_dict()
    except ConfigError:
        return recorded


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
