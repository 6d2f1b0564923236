"""Observers of a run: where a run is reported besides its own directory (an experiment tracker).

The run loop calls an observer at the points it already has: once the run directory is ready
(``started``), after every finished step (``step``, through :class:`ObservedRecord`), and when
``result.json`` is written (``finished``) or the run stops on an error (``failed``). Trackers are
chosen by ``RunConfig.tracking.spec`` through :data:`TRACKERS`, a registry like the backends'
ones (entry-point group ``ipo_vlm.tracker``), so the run layer never imports a tracker's client.

A tracker must never stop or lose a run: its implementation catches its own failures, warns once
and goes quiet (see ``ipo_vlm.tracking``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ipo_vlm.methods.base import RunRecord, StepRecord
from ipo_vlm.errors import ConfigError
from ipo_vlm.registry import Registry, split_spec
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import TrackingConfig
    from ipo_vlm.runs.rundir import RunDir


@dataclass(frozen=True)
class StepReport:
    """What an observer hears after each finished step."""

    step: int
    #: the best training accuracy of every template scored so far (resumed steps included)
    best_train_acc: float
    #: new, valid candidates the step scored
    valid: int
    tokens_in: int
    tokens_out: int
    #: wall time since the previous step finished (or since the observed record was opened)
    seconds: float


class RunObserver(Protocol):
    """Hears a run's progress; every call must return quickly and never raise."""

    def started(self, rundir: "RunDir", config: dict[str, Any], resumed: bool) -> None: ...

    def step(self, report: StepReport) -> None: ...

    def finished(self, rundir: "RunDir", result: dict[str, Any]) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class NullObserver:
    """No tracking (``tracking.spec: none``)."""

    def started(self, rundir: "RunDir", config: dict[str, Any], resumed: bool) -> None:
        pass

    def step(self, report: StepReport) -> None:
        pass

    def finished(self, rundir: "RunDir", result: dict[str, Any]) -> None:
        pass

    def failed(self, error: BaseException) -> None:
        pass


class ObservedRecord:
    """A :class:`~ipo_vlm.methods.base.RunRecord` that passes every write to ``record`` and tells
    ``observer`` about each finished step, so methods need not know about observers."""

    def __init__(self, record: RunRecord, observer: RunObserver) -> None:
        self._record = record
        self._observer = observer
        self._best = max((s.accuracy for s in record.history() if s.accuracy == s.accuracy), default=float("nan"))
        self._since = time.perf_counter()

    def append_history(self, scored: ScoredTemplate) -> None:
        self._record.append_history(scored)
        if scored.accuracy == scored.accuracy and not scored.accuracy <= self._best:
            self._best = scored.accuracy

    def append_step(self, record: StepRecord) -> None:
        self._record.append_step(record)
        now = time.perf_counter()
        report = StepReport(record.step, self._best, record.valid, record.tokens_in, record.tokens_out, now - self._since)
        self._since = now
        self._observer.step(report)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._record, name)


TRACKERS: Registry[Any] = Registry("tracker", backends=False)
TRACKERS.register("none", lambda name, **options: NullObserver(), "no tracking")
TRACKERS.register("mlflow", "ipo_vlm.tracking.mlflow_tracker:load_run_tracker",
                  "an MLflow run per optimize and per benchmark cell ($MLFLOW_TRACKING_URI, default ./mlruns)")


def tracker_scheme(spec: str) -> str:
    """The tracker a spec names (``mlflow`` for ``mlflow?x=1``); an unknown one is a ``ConfigError``."""
    scheme, _ = split_spec(spec)
    known = TRACKERS.schemes()
    if scheme not in known:
        raise ConfigError(f"unknown tracker {scheme!r}; known: {', '.join(known)}")
    return scheme


def create_observer(tracking: "TrackingConfig", parent: dict[str, Any] | None = None, run_name: str | None = None) -> RunObserver:
    """The observer of ``tracking.spec``; ``parent`` (from a grid's tracker: its run id, store
    and experiment) nests the run under the grid's run. An unknown tracker is a ``ConfigError``
    that lists the known ones."""
    if tracking.spec == "none":
        return NullObserver()
    return TRACKERS.create(tracking.spec, experiment=tracking.experiment, parent=parent, run_name=run_name)


@contextmanager
def reporting_failures(observer: RunObserver) -> Iterator[None]:
    """Tell ``observer`` when the block raises (the error still propagates)."""
    try:
        yield
    except BaseException as e:
        observer.failed(e)
        raise
