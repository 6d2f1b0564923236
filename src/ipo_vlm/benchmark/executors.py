"""Where cells run: in this process one after another, in N local processes, or as Ray tasks.

An executor maps a module-level function over plain-data items and yields ``(index, value,
error)`` as each finishes. The function is expected to report its own failures in its value;
``error`` is a one-line message only when the worker itself died (a crashed process, a lost
Ray node). Workers build their own backends from the item, so nothing but plain data ever
crosses a process boundary."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from ipo_vlm.errors import ConfigError, one_line

log = logging.getLogger(__name__)

Result = tuple[int, Any, "str | None"]
#: environment that a worker must share with the driver (the content-addressed caches)
FORWARDED_ENV = ("IPO_CACHE_DIR", "IPO_MODEL_DIR", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OPENAI_BASE_URL",
               "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")


class Executor(Protocol):
    name: str
    parallel: bool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None) -> Iterator[Result]:
        ...

    def close(self) -> None:
        ...


class LocalExecutor:
    """Sequential, in this process (the default)."""

    name = "local"
    parallel = False

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None) -> Iterator[Result]:
        for i, item in enumerate(items):
            yield i, fn(item), None

    def close(self) -> None:
        pass


class ProcessExecutor:
    """``jobs`` local processes (spawned, so no inherited model or database handles)."""

    name = "processes"
    parallel = True

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self._pool: Any = None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None) -> Iterator[Result]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"))
        futures = {self._pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            try:
                yield futures[fut], fut.result(), None
            except Exception as e:  # the worker process died or could not unpickle
                yield futures[fut], None, one_line(e)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Items as Ray tasks: a local Ray instance by default, or the cluster at ``address``.

    The run directories and ``$IPO_CACHE_DIR`` must be on storage that every node sees (a
    shared file system) for a cluster; locally they simply are."""

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, num_cpus: int | None = None, init_options: dict[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError('--executor ray needs Ray: pip install "ipo-vlm[ray]"') from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
            opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                    "runtime_env": {"env_vars": env} if env else None}
            if address:
                opts["address"] = address
            elif num_cpus:
                opts["num_cpus"] = num_cpus
            opts.update(init_options or {})
            try:
                ray.init(**{k: v for k, v in opts.items() if v is not None})
            except ConnectionError as e:
                raise ConfigError(f"cannot reach the Ray cluster at {address}: {one_line(e)}") from None
            self._started = True

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], resources: dict[str, float] | None = None) -> Iterator[Result]:
        ray = self._ray
        options = {"num_cpus": 1, "max_retries": 0, **(resources or {})}
        remote = ray.remote(fn).options(**options)
        pending = {remote.remote(item): i for i, item in enumerate(items)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    yield i, ray.get(ref), None
                except Exception as e:  # a task whose worker died, or a lost node
                    yield i, None, one_line(e)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def make_executor(kind: str, jobs: int = 1, ray_address: str | None = None,
                  ray_init: dict[str, Any] | None = None) -> Executor:
    """``local`` with ``jobs`` 1 runs in-process; ``local`` with more runs local processes;
    ``ray`` runs Ray tasks (``jobs`` caps a local Ray instance's CPUs)."""
    if kind == "local":
        return LocalExecutor() if jobs == 1 else ProcessExecutor(jobs)
    if kind == "ray":
        return RayExecutor(ray_address, num_cpus=jobs if jobs > 1 else None, init_options=ray_init)
    raise ConfigError(f"unknown executor {kind!r}; known: local, ray")
