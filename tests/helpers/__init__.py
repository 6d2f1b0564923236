"""Helpers shared by the tests: simulated kills at the run's crash-safe points."""

from __future__ import annotations


class Killed(Exception):
    """Stands in for kill -9: raised from a hook, the process state is simply dropped."""


def kill_at(event: str, nth: int = 1):
    """A hook for ``optimize()`` / the search loop that raises :class:`Killed` the ``nth`` time
    ``event`` ("config", "candidate", "step_done", "result") happens."""
    seen = {"n": 0}

    def hook(ev: str, step: int) -> None:
        if ev == event:
            seen["n"] += 1
            if seen["n"] == nth:
                raise Killed(ev)

    return hook
