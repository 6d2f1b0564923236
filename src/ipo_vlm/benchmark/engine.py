"""What the benchmark uses from the layers below it (io, engine, methods, runs), in one place.
None of these imports torch, transformers or ray at import time."""

from __future__ import annotations

from ipo_vlm.engine.features import FeatureStore
from ipo_vlm.engine.scoring import Scorer
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.io.jsonio import append_jsonl, atomic_write_bytes, atomic_write_json, read_jsonl
from ipo_vlm.methods.ipo.dryrun import dry_run_plan
from ipo_vlm.runs.optimize import create_backends, optimize
from ipo_vlm.runs.rundir import RunDir, config_differences

__all__ = [
    "FeatureStore", "RunDir", "Scorer", "append_jsonl", "atomic_write_bytes", "atomic_write_json", "config_differences",
    "create_backends", "dry_run_plan", "optimize", "read_jsonl", "sha256_json",
]
