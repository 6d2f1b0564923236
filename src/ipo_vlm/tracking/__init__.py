"""Experiment tracking: runs reported where researchers already compare them (MLflow).

Opt-in with ``--track mlflow`` or ``tracking: mlflow`` in a settings or grid file. A run's
tracker is chosen through :data:`ipo_vlm.runs.observe.TRACKERS` and hears the run through the
small :class:`~ipo_vlm.runs.observe.RunObserver` interface; a grid's parent run comes from
:func:`grid_tracker`. Nothing here imports ``mlflow`` until a tracker first talks to its store."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NullGridTracker:
    """No parent run: cells are tracked (or not) on their own."""

    def started(self, bench: Path, grid: dict[str, Any], cells: int) -> dict[str, Any] | None:
        return None

    def cell_done(self, done: int, failed: int) -> None:
        pass

    def finished(self, bench: Path, failed: int) -> None:
        pass


def grid_tracker(tracking: dict[str, Any]) -> Any:
    """The parent-run tracker of a grid whose cells have the settings ``tracking`` (a
    ``TrackingConfig`` as a dict). An unknown tracker is a ``ConfigError`` now, before any cell."""
    from ipo_vlm.runs.observe import tracker_scheme

    if tracker_scheme(str(tracking.get("spec") or "none")) != "mlflow":
        return NullGridTracker()
    from ipo_vlm.tracking.mlflow_tracker import MlflowGridTracker

    return MlflowGridTracker(tracking.get("experiment"))
