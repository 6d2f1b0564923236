"""A file of the repository's ``scripts/`` or ``bench/`` loaded as a module, for tests of its
functions (those folders are not packages)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_script(relative: str) -> ModuleType:
    """``load_script("bench/agreement.py")``: the file run as a module named after it (its folder
    goes on ``sys.path``, as when it runs, so that it can import its neighbours)."""
    path = REPO / relative
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
