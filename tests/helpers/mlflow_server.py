"""A real MLflow tracking server for tests: ``mlflow server`` with an SQLite store and proxied
artifacts, on a free loopback port, in its own process group (stopped with everything it spawned)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

START_TIMEOUT_S = 240  # the first start creates the database; a busy 2-core machine is slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "MlflowServer":
        mlflow = Path(sys.executable).with_name("mlflow")
        if not mlflow.exists():
            pytest.fail("the tracking tests need MLflow: pip install 'ipo-vlm[track]' (make test installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "server.log"
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        self.proc = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
             "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", "1"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200 and self._store_answers(deadline):
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        pytest.fail(f"mlflow server did not answer within {START_TIMEOUT_S} s: {self.log.read_text()[-2000:]}")

    def _store_answers(self, deadline: float) -> bool:
        """The health page answers before the tracking store is warm; on a loaded machine the
        first API call can take longer than a tracked run waits (it never retries)."""
        body = b'{"max_results": 1}'
        while time.monotonic() < deadline:
            req = urllib.request.Request(f"{self.url}/api/2.0/mlflow/experiments/search", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status == 200
            except OSError:
                time.sleep(0.5)
        return False

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def client(self):  # type: ignore[no-untyped-def]
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.url)
