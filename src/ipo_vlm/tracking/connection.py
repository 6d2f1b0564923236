"""The connection to an MLflow tracking store, made so that it can never stop a run.

``mlflow`` is imported on the first call, never at import time. Every call to the store goes
through :meth:`Connection.call`: the first failure (server down, bad URI, a refused write) is
one warning line, after which the connection is quiet and every later call returns ``None``.
MLflow's own HTTP retries back off for minutes by default; unless the user set them, a run
waits at most :data:`REQUEST_TIMEOUT_S` seconds for a server that does not answer (no retries:
the first failure ends tracking for the run, with its one warning)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ipo_vlm.errors import one_line

log = logging.getLogger("ipo_vlm.tracking")

DEFAULT_EXPERIMENT = "ipo-vlm"
#: where runs go without $MLFLOW_TRACKING_URI: ``./mlruns`` (an SQLite store and its artifacts)
DEFAULT_DIR = "mlruns"
REQUEST_TIMEOUT_S = 10
#: set unless the user set them: bounded requests, no telemetry from an offline machine, a quiet stdout
_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": str(REQUEST_TIMEOUT_S),
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # MLflow prints run links on stdout, where the command's own output goes
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def public_uri(uri: str) -> str:
    """``uri`` without a user name or password, as it may be written to disk or shown."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def resolve_uri(uri: str | None = None) -> tuple[str, str | None]:
    """(tracking URI, artifact location for new experiments): ``uri``, else
    $MLFLOW_TRACKING_URI, else an SQLite store in ``./mlruns`` with its artifacts beside it
    (MLflow 3 refuses a plain folder as a store)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri, None
    root = Path(DEFAULT_DIR).resolve()
    return f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()


class Connection:
    """A lazily made ``MlflowClient`` for one URI and experiment, with failures contained."""

    def __init__(self, uri: str | None = None, experiment: str | None = None, experiment_id: str | None = None) -> None:
        self.uri, self._artifacts = resolve_uri(uri)
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        self._experiment_id = experiment_id
        self._client: Any = None
        self.broken = False

    @property
    def client(self) -> Any:
        if self._client is None:
            for key, value in _ENV_DEFAULTS.items():
                os.environ.setdefault(key, value)
            if self.uri.startswith("sqlite:///"):
                Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            from mlflow.tracking import MlflowClient

            # MLflow's INFO lines (database set-up, run links) are not this run's output
            if not log.isEnabledFor(logging.DEBUG):
                for name in ("mlflow", "alembic"):
                    logging.getLogger(name).setLevel(logging.WARNING)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, or ``None`` once anything failed (the first failure warns once)."""
        if self.broken:
            return None
        try:
            return fn()
        except Exception as e:  # any failure of the tracker: the run goes on without it
            self.broken = True
            log.warning("tracking: MLflow at %s failed to %s (%s); the run goes on without tracking",
                        public_uri(self.uri), what, one_line(e, 200))
            return None

    def experiment_id(self) -> str:
        """The experiment's id, created on first use (call inside :meth:`call`)."""
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                self._experiment_id = self.client.create_experiment(self.experiment, artifact_location=self._artifacts)
        return self._experiment_id


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted names, values as text (MLflow's limit: 6000)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, name + "."))
        else:
            out[name] = str(value)[:6000]
    return out
