"""ipo-vlm: interpretable prompt optimization for CLIP-style vision-language models.

An LLM proposes human-readable prompt templates, a frozen VLM scores them on cached features
of few-shot base-class images, and an episodic memory of the best templates steers the next
proposals. Importing this package is cheap: the library API below is loaded on first use, and
torch, transformers, openai and llama_cpp are only imported by the backends that need them::

    from ipo_vlm import optimize, resolve_config
    result = optimize(resolve_config("demo"), "runs/demo")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

from ipo_vlm.errors import BackendError, BudgetExceeded, ConfigError, DataError, IpoError

# name -> module that defines it; imported when first asked for
_LAZY = {
    "RunConfig": "ipo_vlm.config",
    "preset": "ipo_vlm.config",
    "resolve_config": "ipo_vlm.config",
    "ScoredTemplate": "ipo_vlm.scored",
    "Task": "ipo_vlm.engine.task",
    "evaluate_on": "ipo_vlm.engine.evaluate",
    "optimize": "ipo_vlm.runs.optimize",
    "resolve_run_config": "ipo_vlm.runs.optimize",
    "RunResult": "ipo_vlm.runs.result",
    "evaluate_run": "ipo_vlm.runs.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ipo_vlm' has no attribute {name!r}")


__all__ = ["BackendError", "BudgetExceeded", "ConfigError", "DataError", "IpoError", "__version__", *_LAZY]
