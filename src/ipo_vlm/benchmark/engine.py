"""The engine modules the benchmark builds on, imported here only: when they move to their
final homes (``io/``, ``engine/``, ``runs/``), this is the one file to repoint. None of them
imports torch, transformers or ray at import time."""

from __future__ import annotations

from ipo_vlm.features import FeatureStore
from ipo_vlm.jsonio import append_jsonl, atomic_write_bytes, atomic_write_json, read_jsonl, sha256_json
from ipo_vlm.optimize import create_backends, dry_run_plan, optimize
from ipo_vlm.rundir import RunDir, config_differences
from ipo_vlm.scoring import Scorer

__all__ = [
    "FeatureStore", "RunDir", "Scorer", "append_jsonl", "atomic_write_bytes", "atomic_write_json", "config_differences",
    "create_backends", "dry_run_plan", "optimize", "read_jsonl", "sha256_json",
]
