"""``Run``: the one reader of a run directory. :class:`~ipo_vlm.runs.rundir.RunDir` writes a run;
everything that reads one — export, classify, evaluate, history, explain, report, the benchmark,
``bench/`` — opens it here::

    run = Run.open("runs/pets")          # a finished run, or one still in progress
    run.config                           # RunConfig, with every resume's changes applied
    run.result                           # RunResult, or None while the run has none
    run.require_result()                 # the RunResult, or the one "no result.json yet" error
    run.history                          # list[ScoredTemplate], in the order recorded
    run.pool()                           # the method's final pool (what result.json ranks)
    run.top(3)                           # the 3 best templates by the run's selection rule
    run.best()                           # the best ScoredTemplate by that rule
    run.task()                           # the engine's Task on the run's dataset and split

**One ranking.** A run's templates are ranked in one way: the method's pool (IPO and random
search: the memory; a fixed method: its own templates), best first by the run's selection rule
(:func:`ipo_vlm.runs.select.rank`). ``result.json`` records the pool when the run ends, so every
reader ranks the same templates; for a run recorded before that (or still in progress) the
method replays its pool from the history. ``top(k)``, ``best()``, ``result.json``'s ensembles,
``export``/``classify --ensemble K`` and ``history`` all go through :meth:`Run.ranked`.

Reading is tolerant of runs in progress: missing optional files are empty; a JSON-lines file
with a torn last line is read up to it; a file that exists but is not JSON is a ``ConfigError``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import ConfigError, IpoError
from ipo_vlm.io.jsonio import numbered_jsonl
from ipo_vlm.methods.base import StepRecord
from ipo_vlm.runs.result import RunResult
from ipo_vlm.runs.rundir import RunDir, scored_records
from ipo_vlm.runs.select import check_ensemble_size, rank
from ipo_vlm.scored import SELECTION_KEYS, ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.data import TaskSplit
    from ipo_vlm.data.base import Dataset
    from ipo_vlm.engine.task import Task

log = logging.getLogger(__name__)

_HISTORY_KEYS = {"template", "train_acc", "train_loss"}
#: what :meth:`Run.pool` can rank: the method's pool, the control's, or every scored template
POOLS = ("method", "control", "history")


def no_result_error(path: str | Path) -> ConfigError:
    """The one error for a run that has no ``result.json`` yet."""
    return ConfigError(f"{path} has no result.json yet; finish (or --resume) the run first")


@dataclass(frozen=True)
class SplitClasses:
    """What ``split.json`` says about classes and image counts (no dataset needed)."""

    base_classnames: list[str]
    novel_classnames: list[str]
    base_labels: list[int]
    novel_labels: list[int]
    #: images per class of each part ("train", "val", "test_base", ...)
    counts: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: Path) -> "SplitClasses":
        try:
            return cls(list(raw["base_classnames"]), list(raw["novel_classnames"]), list(raw.get("base_labels") or []),
                       list(raw.get("novel_labels") or []), dict(raw.get("counts") or {}))
        except (KeyError, TypeError):
            raise ConfigError(f"{where} lacks the class lists") from None

    def classnames(self) -> list[str]:
        """Every class name in label order (base then novel when the labels are missing)."""
        names = self.base_classnames + self.novel_classnames
        labels = self.base_labels + self.novel_labels
        if len(labels) != len(names):
            return names
        return [n for _, n in sorted(zip(labels, names), key=lambda p: p[0])]

    def image_counts(self) -> tuple[int, int]:
        """Few-shot (train, val) image counts: the weights of the ``trainval`` selection."""
        return sum(self.counts.get("train") or []), sum(self.counts.get("val") or [])


def _read_json(path: Path) -> Any:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None


def _read_object(path: Path) -> dict[str, Any] | None:
    value = _read_json(path)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    return value


def _scored(records: list[dict[str, Any]]) -> list[ScoredTemplate]:
    out = []
    for r in records:
        if _HISTORY_KEYS <= set(r) and isinstance(r["template"], str) and r["train_acc"] is not None:
            try:
                out.append(ScoredTemplate.from_record(r))
            except (TypeError, ValueError):
                continue
    return out


class Run:
    """One run directory as read from its files (see the module docstring). Build it with
    :meth:`open`, which reads ``config.json``; every other file is read once, when first used."""

    def __init__(self, path: Path, recorded: dict[str, Any]) -> None:
        self.path = path
        self.files = RunDir(path)
        #: ``config.json`` as recorded, its ``config`` section with every resume's changes applied
        self.recorded = recorded
        self.config_dict: dict[str, Any] = recorded["config"]
        self.created: str | None = recorded.get("created")

    @cached_property
    def split(self) -> SplitClasses | None:
        """``split.json``'s classes and counts, or None before the split is drawn."""
        raw = _read_object(self.files.split_path)
        return SplitClasses.from_json(raw, self.files.split_path) if raw is not None else None

    @cached_property
    def history_records(self) -> list[dict[str, Any]]:
        """``history.jsonl``'s scored-template lines, as recorded (for readers that show them);
        a damaged line is skipped with a warning naming it (``RunDir.history_records``)."""
        return [r for r in self.files.history_records() if isinstance(r.get("step"), int)]

    @cached_property
    def history(self) -> list[ScoredTemplate]:
        """Every scored template, in the order recorded."""
        return _scored(self.history_records)

    @cached_property
    def result_dict(self) -> dict[str, Any] | None:
        """``result.json`` as recorded (None while the run has none)."""
        return self.files.read_result()

    @classmethod
    def open(cls, path: str | Path, need_result: bool = False) -> "Run":
        """Read the run directory ``path``; ``need_result``: a run without ``result.json`` is
        the one "no result.json yet" ``ConfigError``."""
        p = Path(path)
        if not p.is_dir():
            raise ConfigError(f"run directory not found: {p} (no config.json)")
        run = cls(p, RunDir(p).read_config())
        if need_result:
            run.require_result()
        return run

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- what was recorded ---------------------------------------------------------------------

    @cached_property
    def config(self) -> "RunConfig":
        """The run's settings (as in force after its resumes) as a ``RunConfig``."""
        from ipo_vlm.config import RunConfig

        return RunConfig.from_dict(self.config_dict)

    @cached_property
    def result(self) -> RunResult | None:
        """``result.json`` as a ``RunResult``, or None while the run has none."""
        if not self.result_dict or not self.result_dict.get("best_template"):
            return None
        try:
            return RunResult.from_dict(self.result_dict)
        except (KeyError, TypeError) as e:
            raise ConfigError(f"{self.files.result_path} is not an ipo result ({type(e).__name__} {e})") from None

    def require_result(self) -> RunResult:
        if self.result is None:
            raise no_result_error(self.path)
        return self.result

    @cached_property
    def steps(self) -> list[StepRecord]:
        """``steps.jsonl``: one record per finished step."""
        return self.files.steps()

    @cached_property
    def calls(self) -> list[dict[str, Any]]:
        """``llm_calls.jsonl``: one record per LLM call."""
        return [r for _, r in numbered_jsonl(self.files.llm_calls_path)]

    @cached_property
    def descriptions(self) -> list[dict[str, Any]]:
        """``descriptions.jsonl``: the image descriptions the captioner wrote."""
        return [r for _, r in numbered_jsonl(self.files.descriptions_path) if "text" in r]

    def read_extra(self, name: str) -> dict[str, Any] | None:
        """Another JSON file in the run directory (``explain.json``), or None."""
        return _read_object(self.path / name)

    # -- settings readers need (tolerant of configs this version cannot fully read) ----------

    def _setting(self, section: str, key: str, default: Any) -> Any:
        value = self.config_dict.get(section)
        return value.get(key, default) if isinstance(value, dict) else default

    @property
    def method(self) -> str:
        from ipo_vlm.config import DEFAULT_METHOD

        return str(self.config_dict.get("method") or (self.result_dict or {}).get("method") or DEFAULT_METHOD)

    @property
    def select_on(self) -> str:
        rule = str(self._setting("optimize", "select_on", "train"))
        return rule if rule in SELECTION_KEYS else "train"

    @property
    def vlm(self) -> str:
        return str(self.config_dict.get("vlm", ""))

    @property
    def vlm_options(self) -> dict[str, Any]:
        return dict(self.config_dict.get("vlm_options") or {})

    @property
    def dataset_name(self) -> str:
        return str((self.result_dict or {}).get("dataset") or self._setting("data", "dataset", "?"))

    def classnames(self) -> tuple[list[str], list[str], list[str]]:
        """(all in label order, base, novel) class names from ``split.json``."""
        if self.split is None:
            raise ConfigError(f"{self.path} has no split.json")
        return self.split.classnames(), list(self.split.base_classnames), list(self.split.novel_classnames)

    def image_counts(self) -> tuple[int, int]:
        return self.split.image_counts() if self.split else (0, 0)

    # -- ranking: the one definition -----------------------------------------------------------

    def pool(self, of: str = "method") -> list[ScoredTemplate]:
        """The scored templates of the method's final pool (``of="control"``: the random-search
        control's; ``of="history"``: every template scored), in the order recorded. The pool is
        ``result.json``'s, else the method replays it from the history."""
        if of not in POOLS:
            raise ValueError(f"unknown pool {of!r}; known: {', '.join(POOLS)}")
        if of == "history":
            return list(self.history)
        history = self.control_history() if of == "control" else self.history
        recorded = (self.result_dict or {}).get("control") if of == "control" else self.result_dict
        templates = recorded.get("pool") if isinstance(recorded, dict) else None
        if isinstance(templates, list) and templates:
            wanted = set(templates)
            return [s for s in history if s.template in wanted]
        control = str(((self.result_dict or {}).get("control") or {}).get("method") or self._setting("optimize", "control", ""))
        return self._replay_pool(history, control if of == "control" else self.method)

    def _replay_pool(self, history: list[ScoredTemplate], method_name: str) -> list[ScoredTemplate]:
        from ipo_vlm.methods.base import create_method

        try:
            replay: Callable[..., list[ScoredTemplate]] | None = getattr(create_method(method_name), "replay_pool", None)
            if replay is not None and history:
                return replay(history, self.config)
        except IpoError as e:  # a plug-in not installed here, settings this version lacks, no dataset
            log.debug("ranking all of %s's history: %s", self.path, e)
        return list(history)

    def ranked(self, by: str | None = None, of: str = "method") -> list[ScoredTemplate]:
        """The distinct templates of :meth:`pool`, best first by ``by`` (default: the run's
        own rule) — the ranking ``result.json``'s selection and ensembles use."""
        return rank(self.pool(of), by or self.select_on, weights=self.image_counts())

    def top(self, k: int, by: str | None = None, of: str = "method") -> list[str]:
        """The ``k`` best templates of the pool (what ``--ensemble k`` uses)."""
        ranked = self.ranked(by, of)
        check_ensemble_size(k, len(ranked))
        return [s.template for s in ranked[:k]]

    def best(self, by: str | None = None) -> ScoredTemplate:
        """The pool's best scored template (for a finished run: its ``best_template``)."""
        return self.ranked(by)[0]

    @property
    def best_template(self) -> str:
        """``result.json``'s selected template, else the best of the pool so far."""
        if self.result is not None:
            return self.result.best_template
        if not self.history:
            raise ConfigError(f"{self.path} has no scored templates yet")
        return self.best().template

    def control_history(self) -> list[ScoredTemplate]:
        """The random-search control's scored templates (``control/history.jsonl``)."""
        return _scored(scored_records(self.path / "control" / "history.jsonl"))

    # -- the run seen through a VLM ------------------------------------------------------------

    def dataset(self, data_root: str | None = None) -> "Dataset":
        """The run's dataset, read from its own data root or from ``data_root`` (the same dataset moved)."""
        from ipo_vlm.data import load_dataset

        return load_dataset(str(self._setting("data", "dataset", "demo")), data_root or self._setting("data", "data_root", None))

    def load_split(self, dataset: "Dataset") -> "TaskSplit":
        from ipo_vlm.data import load_split

        if not self.files.split_path.exists():
            raise ConfigError(f"{self.path} has no split.json yet")
        return load_split(self.files.split_path, dataset)

    def task(self, dataset: "Dataset | None" = None, vlm: Any = None, vlm_spec: str | None = None,
             vlm_options: dict[str, Any] | None = None, with_val: bool = False) -> "Task":
        """The engine's :class:`~ipo_vlm.engine.task.Task` on the run's dataset and split;
        ``dataset``/``vlm`` default to the run's (``vlm_spec`` and ``vlm_options`` override them)."""
        from ipo_vlm.engine.task import Task

        dataset = dataset if dataset is not None else self.dataset()
        split = self.load_split(dataset)
        if vlm is None:
            from ipo_vlm.vlm import create_vlm

            vlm = create_vlm(vlm_spec or self.vlm, **{**self.vlm_options, **(vlm_options or {})})
        return Task(dataset, split, vlm, with_val=with_val, lazy=True)
