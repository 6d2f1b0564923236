"""The grid file: which datasets, shots, seeds and methods to run, with which settings.

A grid is YAML (or JSON)::

    datasets: [oxford_pets, eurosat, {name: folder, data_root: ~/photos, label: my-photos}]
    data_root: ~/DATA              # default for the CoOp datasets
    shots: [1, 16]
    seeds: [1, 2, 3]
    methods: [handcrafted, random, ipo]
    preset: paper                  # starting settings (default: paper)
    vlm: hf:openai/clip-vit-base-patch16
    llm: openai:gpt-4o-mini        # a spec string, or a section: {spec: ..., temperature: ...}
    optimize: {steps: 100}         # any RunConfig section (llm, captioner, optimize) ...
    steps: 100                     # ... or a shorthand for one of its fields (see SHORTHANDS)
    optimize.meta_prompt: edit     # ... or any field by its dotted name, as ``--set`` takes it
    ipo: {captioner: none, steps: 50}   # per method: the same keys, applied after the grid's
    transfer: {source: imagenet, targets: [caltech101, imagenetv2]}
    tracking: mlflow               # or {spec: mlflow, experiment: my-grid}: one MLflow run per cell
    prices: {gpt-4o-mini: {input: 0.15, output: 0.60}}   # USD per 1M tokens; overrides the table
    ray: {num_cpus: 1, num_gpus: 0.25}                     # resources of one Ray task

Resolution of one cell's settings: preset -> grid-level settings -> the method's settings ->
the cell itself (dataset, data_root, shots, seed, method). A cell is identified by a hash of
the resolved ``RunConfig``, so any change of settings is a different cell."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipo_vlm.config import RunConfig, identity, preset
from ipo_vlm.methods import METHODS as METHOD_REGISTRY
from ipo_vlm.errors import ConfigError
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.io.jsonio import read_settings_file

#: shorthand key -> (RunConfig section, field)
SHORTHANDS: dict[str, tuple[str, str]] = {
    "steps": ("optimize", "steps"),
    "candidates": ("optimize", "candidates"),
    "memory_size": ("optimize", "memory_size"),
    "select_on": ("optimize", "select_on"),
    "max_llm_tokens": ("optimize", "max_llm_tokens"),
    "max_retries_per_step": ("optimize", "max_retries_per_step"),
    "temperature": ("llm", "temperature"),
    "top_p": ("llm", "top_p"),
    "max_tokens": ("llm", "max_tokens"),
    "use_cache": ("llm", "use_cache"),
}
#: sections whose value may also be a bare spec string
_SPEC_SECTIONS = ("llm", "captioner", "tracking")
_SECTIONS = ("llm", "captioner", "optimize", "tracking")
_GRID_KEYS = ("datasets", "data_root", "shots", "seeds", "methods", "preset", "transfer", "prices", "ray")


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the grid. ``label`` names it in cell names and tables."""

    name: str  # as load_dataset takes it (canonical for known datasets)
    data_root: str | None
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "data_root": self.data_root, "label": self.label}


@dataclass(frozen=True)
class Cell:
    """One run of the grid: dataset x shots x seed x method, with its resolved settings."""

    cell_id: str
    name: str
    dataset: str  # the entry's label
    dataset_name: str
    shots: int
    seed: int
    method: str
    config: dict[str, Any]  # RunConfig.to_dict()

    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("cell_id", "name", "dataset", "dataset_name", "shots", "seed", "method", "config")}


@dataclass(frozen=True)
class TransferSpec:
    """Templates found on ``source`` (a dataset label of the grid) evaluated on ``targets``."""

    source: str
    targets: tuple[DatasetEntry, ...]


@dataclass(frozen=True)
class Grid:
    datasets: tuple[DatasetEntry, ...]
    shots: tuple[int, ...]
    seeds: tuple[int, ...]
    methods: tuple[str, ...]
    preset: str
    settings: dict[str, Any] = field(default_factory=dict)
    method_settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfer: TransferSpec | None = None
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    ray: dict[str, float] = field(default_factory=dict)

    def cells(self) -> list[Cell]:
        """Every cell, dataset-major (so a dataset's features are computed by its first cell)."""
        out = []
        for ds in self.datasets:
            for shots in self.shots:
                for seed in self.seeds:
                    for method in self.methods:
                        out.append(self.cell(ds, shots, seed, method))
        return out

    def cell(self, ds: DatasetEntry, shots: int, seed: int, method: str) -> Cell:
        raw = preset(self.preset).to_dict()
        raw = deep_merge(raw, self.settings)
        raw = deep_merge(raw, self.method_settings.get(method, {}))
        raw = deep_merge(raw, {"data": {"dataset": ds.name, "data_root": ds.data_root, "shots": shots, "seed": seed},
                               "method": method})
        config = RunConfig.from_dict(raw).to_dict()
        name = f"{_slug(ds.label)}-{shots}shot-s{seed}-{method}"
        return Cell(sha256_json(identity(config))[:16], name, ds.label, ds.name, shots, seed, method, config)

    def with_settings(self, over: dict[str, Any]) -> "Grid":
        """The grid with grid-level settings laid over its own (checked by resolving every cell)."""
        from dataclasses import replace

        grid = replace(self, settings=deep_merge(self.settings, over))
        grid.cells()
        return grid

    def to_dict(self) -> dict[str, Any]:
        """The resolved grid (``grid.json``): inputs plus every cell's settings."""
        return {
            "datasets": [d.to_dict() for d in self.datasets],
            "shots": list(self.shots),
            "seeds": list(self.seeds),
            "methods": list(self.methods),
            "preset": self.preset,
            "settings": self.settings,
            "method_settings": self.method_settings,
            "transfer": None if self.transfer is None else {
                "source": self.transfer.source, "targets": [t.to_dict() for t in self.transfer.targets]},
            "prices": self.prices,
            "ray": self.ray,
            "cells": [c.to_dict() for c in self.cells()],
        }


def _methods() -> tuple[str, ...]:
    """The registered method names (built-ins and plugins): each may have a settings section."""
    return tuple(METHOD_REGISTRY.schemes())


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "dataset"


def settings_block(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """A grid or method settings mapping as a partial ``RunConfig`` dict (checked when a cell
    is resolved). Dataset, shots and seed are the grid's to set, not a settings block's."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "vlm":
            if not isinstance(value, str):
                raise ConfigError(f"{where}: vlm must be a spec string, e.g. hf:openai/clip-vit-base-patch16")
            out["vlm"] = value
        elif key in _SPEC_SECTIONS and isinstance(value, str):
            out = deep_merge(out, {key: {"spec": value}})
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a mapping of its settings")
            out = deep_merge(out, {key: dict(value)})
        elif key in SHORTHANDS:
            section, name = SHORTHANDS[key]
            out = deep_merge(out, {section: {name: value}})
        elif "." in key and key.split(".")[0] in _SECTIONS:
            from ipo_vlm.overrides import setting

            out = deep_merge(out, setting(key, value))  # the --set vocabulary: optimize.meta_prompt: edit
        elif key == "data.class_split":  # the one data setting the grid's axes leave open
            out = deep_merge(out, {"data": {"class_split": value}})
        elif key in ("data", "dataset", "shots", "seed", "method"):
            raise ConfigError(f"{where}: {key!r} is set by the grid (datasets, shots, seeds, methods), not here")
        else:
            known = sorted({*_GRID_KEYS, "vlm", *_SECTIONS, *SHORTHANDS, *_methods()}) if where == "grid" else sorted({"vlm", *_SECTIONS, *SHORTHANDS})
            raise ConfigError(f"{where}: unknown key {key!r}; known: {', '.join(known)}")
    return out


def _int_list(value: Any, key: str, default: list[int]) -> tuple[int, ...]:
    if value is None:
        return tuple(default)
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise ConfigError(f"grid: {key} must be an integer or a list of integers, got {value!r}")
    return tuple(dict.fromkeys(items))


def _dataset_entry(raw: Any, default_root: str | None, where: str) -> DatasetEntry:
    from ipo_vlm.data import canonical_dataset_name

    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise ConfigError(f"{where}: each dataset is a name or {{name, data_root, label}}, got {raw!r}")
    unknown = set(raw) - {"name", "data_root", "label"}
    if unknown:
        raise ConfigError(f"{where}: unknown dataset key(s) {', '.join(sorted(unknown))}; known: name, data_root, label")
    name = raw["name"].strip()
    canonical = canonical_dataset_name(name)
    root = raw.get("data_root", default_root if canonical not in ("demo",) else None)
    if canonical == "folder" and not raw.get("data_root"):
        raise ConfigError(f"{where}: a folder dataset needs its own data_root")
    if canonical is None:  # a folder path given as the name
        from ipo_vlm.data import _looks_like_path, known_datasets

        if not _looks_like_path(name):  # a misspelt name, not a folder: say so now, not per cell
            raise ConfigError(f"{where}: unknown dataset {name!r}; known: {', '.join(known_datasets())}, or a folder path")
        canonical, root = "folder", name
    root = None if root is None else str(Path(str(root)).expanduser())
    label = raw.get("label") or (Path(root).name if canonical == "folder" and root else canonical)
    return DatasetEntry(canonical, root, str(label))


def _unique_labels(entries: list[DatasetEntry], where: str) -> None:
    seen: set[str] = set()
    for e in entries:
        if e.label in seen:
            raise ConfigError(f"{where}: two datasets are labelled {e.label!r}; give one a distinct label")
        seen.add(e.label)


def parse_grid(raw: Any) -> Grid:
    """Validate a grid mapping (as loaded from YAML) and build the :class:`Grid`."""
    if not isinstance(raw, dict):
        raise ConfigError("a grid file must hold a mapping (datasets, shots, seeds, methods, ...)")
    root = raw.get("data_root")
    if root is not None and not isinstance(root, str):
        raise ConfigError("grid: data_root must be a path")
    datasets_raw = raw.get("datasets")
    if not isinstance(datasets_raw, list) or not datasets_raw:
        raise ConfigError("grid: datasets must be a non-empty list")
    datasets = [_dataset_entry(d, root, "grid datasets") for d in datasets_raw]
    _unique_labels(datasets, "grid datasets")
    methods_raw = raw.get("methods", ["ipo"])
    methods = [methods_raw] if isinstance(methods_raw, str) else methods_raw
    if not isinstance(methods, list) or not methods:
        raise ConfigError("grid: methods must be a non-empty list")
    for m in methods:
        if m not in _methods():
            raise ConfigError(f"grid: unknown method {m!r}; known: {', '.join(_methods())}")
    preset_name = raw.get("preset", "paper")
    preset(preset_name)  # unknown preset: one clear line now
    settings = settings_block({k: v for k, v in raw.items() if k not in (*_GRID_KEYS, *_methods())}, "grid")
    method_settings = {}
    for m in _methods():
        if m in raw:
            if m not in methods:
                raise ConfigError(f"grid: settings given for method {m!r}, which is not in methods")
            if not isinstance(raw[m], dict):
                raise ConfigError(f"grid: {m} must be a mapping of settings")
            method_settings[m] = settings_block(raw[m], f"grid {m}")
    grid = Grid(
        datasets=tuple(datasets),
        shots=_int_list(raw.get("shots"), "shots", [16]),
        seeds=_int_list(raw.get("seeds"), "seeds", [1, 2, 3]),
        methods=tuple(dict.fromkeys(methods)),
        preset=preset_name,
        settings=settings,
        method_settings=method_settings,
        transfer=_transfer(raw.get("transfer"), root, datasets),
        prices=_prices(raw.get("prices")),
        ray=_ray(raw.get("ray")),
    )
    grid.cells()  # resolve every cell now: a bad setting fails before anything runs
    return grid


def _transfer(raw: Any, root: str | None, datasets: list[DatasetEntry]) -> TransferSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"source", "targets"} or "source" not in raw:
        raise ConfigError("grid: transfer must be {source: <dataset label>, targets: [datasets]}")
    source = raw["source"]
    labels = {d.label: d for d in datasets}
    if source not in labels:
        from ipo_vlm.data import canonical_dataset_name

        match = [d.label for d in datasets if d.name == canonical_dataset_name(str(source))]
        if not match:
            raise ConfigError(f"grid: transfer source {source!r} is not one of the grid's datasets ({', '.join(labels)})")
        source = match[0]
    targets_raw = raw.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise ConfigError("grid: transfer targets must be a non-empty list of datasets")
    targets = [_dataset_entry(t, root, "grid transfer targets") for t in targets_raw]
    _unique_labels(targets, "grid transfer targets")
    return TransferSpec(source, tuple(targets))


def _prices(raw: Any) -> dict[str, dict[str, float]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("grid: prices must map a model name to {input: USD, output: USD} per 1M tokens")
    out = {}
    for model, p in raw.items():
        if not isinstance(p, dict) or set(p) != {"input", "output"} or not all(isinstance(v, (int, float)) for v in p.values()):
            raise ConfigError(f"grid: price of {model!r} must be {{input: USD, output: USD}} per 1M tokens")
        out[str(model)] = {"input": float(p["input"]), "output": float(p["output"])}
    return out


def _ray(raw: Any) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - {"num_cpus", "num_gpus"}:
        raise ConfigError("grid: ray must be {num_cpus: N, num_gpus: N} (resources of one cell)")
    return {k: float(v) for k, v in raw.items()}


def load_grid(path: str | Path, settings: Any = ()) -> Grid:
    """Read and validate a grid file (YAML or JSON); ``settings`` (``section.key=value``, as
    ``--set`` takes them) are laid over the grid-level settings."""
    import yaml

    raw = read_settings_file(path, "grid file")
    if settings:
        for item in settings:
            name, sep, value = str(item).partition("=")
            if not sep:
                raise ConfigError(f"expected SECTION.KEY=VALUE (e.g. optimize.steps=3), got {item!r}")
            raw[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return parse_grid(raw)
