"""The few-shot base-to-novel protocol (CoOp / CoCoOp / IPO).

Classes are sorted by label; the first ceil(n/2) are *base*, the rest *novel* (``class_split
"ordered"``, the protocol's own), and labels are re-indexed within each half. ``class_split
"random"`` draws which classes are base from the split's seed instead (the same hash ranking as
the shots, so it is identical everywhere): where a dataset's label order groups kinds of objects
(garments first, footwear last), ordered halves test transfer to another kind of object, and
random halves test transfer to unseen classes of the same mix. K training images per class are drawn by ranking each class's
refs by ``sha256(f"{seed}:{ref}")`` and taking the first K: no RNG stream is involved, so a
split is identical on every machine and Python version, and the K-shot set contains every
smaller-K set of the same seed. Validation takes min(K, 4) per class the same way.

A class with fewer than K training images contributes all it has (a logged warning, and the
shortfall recorded in ``split.json``) unless ``strict=True``; a class with none is an error."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipo_vlm.config import CLASS_SPLITS
from ipo_vlm.data.base import Dataset, Sample, check_distinct_classnames
from ipo_vlm.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLIT_FORMAT = "ipo-split/1"
PARTS = ("train", "val", "train_novel", "test_base", "test_novel")
MAX_VAL_SHOTS = 4


@dataclass(frozen=True)
class TaskSplit:
    """One seeded few-shot base-to-novel task: what the optimizer trains on and is tested on."""

    dataset: str
    shots: int
    seed: int
    base_classnames: tuple[str, ...]
    novel_classnames: tuple[str, ...]
    #: the dataset's own labels of each half, in order (base label i = dataset label base_labels[i])
    base_labels: tuple[int, ...]
    novel_labels: tuple[int, ...]
    train: list[Sample]
    val: list[Sample]
    train_novel: list[Sample]
    test_base: list[Sample]
    test_novel: list[Sample]
    #: classes that had fewer images than asked for: {"part", "classname", "available", "wanted"}
    short_classes: list[dict[str, Any]] = field(default_factory=list)

    def part(self, name: str) -> list[Sample]:
        """One of ``PARTS`` by name."""
        if name not in PARTS:
            raise ConfigError(f"unknown split part {name!r}; known: {', '.join(PARTS)}")
        return getattr(self, name)

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each part (base parts over base classes, novel over novel)."""
        out = {}
        for name in PARTS:
            n = len(self.novel_classnames if name.endswith("novel") else self.base_classnames)
            per = [0] * n
            for s in self.part(name):
                per[s.label] += 1
            out[name] = per
        return out

    def to_json(self) -> dict[str, Any]:
        """What ``split.json`` holds; ``TaskSplit.from_json`` reads it back."""
        return {
            "format": SPLIT_FORMAT,
            "dataset": self.dataset,
            "shots": self.shots,
            "seed": self.seed,
            "base_classnames": list(self.base_classnames),
            "novel_classnames": list(self.novel_classnames),
            "base_labels": list(self.base_labels),
            "novel_labels": list(self.novel_labels),
            "counts": self.counts(),
            "short_classes": list(self.short_classes),
            "samples": {name: [[s.ref, s.label] for s in self.part(name)] for name in PARTS},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], ds: Dataset) -> "TaskSplit":
        """Rebuild a split written by ``to_json`` against the same dataset."""
        try:
            if d.get("format") != SPLIT_FORMAT:
                raise DataError(f"not a split file of format {SPLIT_FORMAT!r}: {d.get('format')!r}")
            if d["dataset"] != ds.info.name:
                raise DataError(f"split is for dataset {d['dataset']!r}, not {ds.info.name!r}")
            halves = {"base": tuple(d["base_classnames"]), "novel": tuple(d["novel_classnames"])}
            labels = {"base": tuple(d["base_labels"]), "novel": tuple(d["novel_labels"])}
            for half in halves:
                actual = tuple(ds.info.classnames[i] for i in labels[half])
                if actual != halves[half]:
                    raise DataError(f"split's {half} classes do not match dataset {ds.info.name!r}")
            parts = {name: _samples(d["samples"][name], halves["novel" if name.endswith("novel") else "base"], name)
                     for name in PARTS}
            return cls(d["dataset"], int(d["shots"]), int(d["seed"]), halves["base"], halves["novel"],
                       labels["base"], labels["novel"], short_classes=list(d.get("short_classes", [])), **parts)
        except (KeyError, TypeError, IndexError, ValueError) as e:
            raise DataError(f"malformed split: {type(e).__name__} {e}") from None

    def save(self, path: str | Path) -> None:
        """Write ``split.json`` atomically."""
        from ipo_vlm.io.jsonio import atomic_write_json

        atomic_write_json(path, self.to_json())


def _samples(rows: list, names: tuple[str, ...], part: str) -> list[Sample]:
    out = []
    for ref, label in rows:
        if not (isinstance(ref, str) and isinstance(label, int) and 0 <= label < len(names)):
            raise DataError(f"malformed split: bad entry {[ref, label]!r} in {part}")
        out.append(Sample(ref, label, names[label]))
    return out


def load_split(path: str | Path, ds: Dataset) -> TaskSplit:
    """Read a ``split.json`` written by ``TaskSplit.save``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"split file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read split file {path}: {e}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path} is not a split file (it holds a JSON {type(raw).__name__})")
    try:
        return TaskSplit.from_json(raw, ds)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise DataError(f"{path} is not a usable split file ({type(e).__name__}: {e}); was it edited by hand?") from None


def base_novel_labels(n_classes: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Base = the first ceil(n/2) labels, novel = the rest (37 -> 19/18, 397 -> 199/198)."""
    cut = math.ceil(n_classes / 2)
    return tuple(range(cut)), tuple(range(cut, n_classes))


def random_base_novel_labels(classnames: tuple[str, ...] | list[str], seed: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Halves of the same sizes as ``base_novel_labels``, with the base classes drawn by ranking
    each class name by ``rank_key(seed, ...)``; each half keeps the dataset's label order."""
    cut = math.ceil(len(classnames) / 2)
    ranked = sorted(range(len(classnames)), key=lambda i: (rank_key(seed, f"class:{classnames[i]}"), i))
    return tuple(sorted(ranked[:cut])), tuple(sorted(ranked[cut:]))


def class_halves(classnames: tuple[str, ...] | list[str], seed: int, class_split: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The (base, novel) dataset labels of a split drawn with ``class_split``."""
    if class_split == "ordered":
        return base_novel_labels(len(classnames))
    if class_split == "random":
        return random_base_novel_labels(classnames, seed)
    raise ConfigError(f"class_split must be one of {', '.join(CLASS_SPLITS)}; got {class_split!r}")


def rank_key(seed: int, ref: str) -> str:
    """The sampling order of a ref for a seed: a hash, stable across machines and versions."""
    return hashlib.sha256(f"{seed}:{ref}".encode("utf-8")).hexdigest()


def _by_label(samples: Iterable[Sample], n_classes: int) -> list[list[Sample]]:
    groups: list[list[Sample]] = [[] for _ in range(n_classes)]
    for s in samples:
        groups[s.label].append(s)
    return groups


def _pick(group: list[Sample], k: int, seed: int, exclude: set[str]) -> list[Sample]:
    ranked = sorted((s for s in group if s.ref not in exclude), key=lambda s: (rank_key(seed, s.ref), s.ref))
    return ranked[:k]


def _relabel(samples: Iterable[Sample], labels: tuple[int, ...], names: tuple[str, ...]) -> list[Sample]:
    index = {old: new for new, old in enumerate(labels)}
    return [Sample(s.ref, index[s.label], names[index[s.label]]) for s in samples if s.label in index]


def _draw(ds: Dataset, shots: int, seed: int, strict: bool) -> tuple[list[list[Sample]], list[list[Sample]], list[dict]]:
    """Per class (dataset labels): the K training shots and min(K, 4) validation shots."""
    names = ds.info.classnames
    train_groups = _by_label(ds.split("train"), len(names))
    val_groups = _by_label(ds.split("val"), len(names))
    val_k = min(shots, MAX_VAL_SHOTS)
    train, val, short = [], [], []
    for label, name in enumerate(names):
        have = len(train_groups[label])
        if have == 0:
            raise DataError(f"class {name!r} has no training images")
        if have < shots:
            if strict:
                raise DataError(f"class {name!r} has {have} training images, fewer than {shots} shots")
            short.append({"part": "train", "classname": name, "available": have, "wanted": shots})
        picked = _pick(train_groups[label], shots, seed, set())
        # where val and train are the same pool (ImageNet) the validation shots must differ
        val_picked = _pick(val_groups[label], val_k, seed, {s.ref for s in picked})
        if len(val_picked) < val_k:
            short.append({"part": "val", "classname": name, "available": len(val_picked), "wanted": val_k})
        train.append(picked)
        val.append(val_picked)
    return train, val, short


def make_split(ds: Dataset, shots: int, seed: int = 1, strict: bool = False, check: bool = True,
               class_split: str = "ordered") -> TaskSplit:
    """Draw the seeded K-shot base-to-novel task of a dataset.

    ``class_split`` is ``"ordered"`` (the first half of the labels is base) or ``"random"``
    (the base half drawn from ``seed``); ``strict`` turns a class with fewer than ``shots`` training images into a ``DataError``;
    ``check`` verifies that every chosen few-shot image and every test image exists."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(f"shots must be a positive integer, got {shots!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    names = ds.info.classnames
    if len(names) < 2:
        raise DataError(f"dataset {ds.info.name!r} has {len(names)} class(es); a base/novel split needs 2 or more")
    check_distinct_classnames(names, where=f"dataset {ds.info.name!r}")
    base, novel = class_halves(names, seed, class_split)
    train, val, short = _draw(ds, shots, seed, strict)
    _warn_short(short, shots)
    base_names = tuple(names[i] for i in base)
    novel_names = tuple(names[i] for i in novel)
    test = ds.split("test")
    split = TaskSplit(
        dataset=ds.info.name, shots=shots, seed=seed,
        base_classnames=base_names, novel_classnames=novel_names, base_labels=base, novel_labels=novel,
        train=_relabel((s for i in base for s in train[i]), base, base_names),
        val=_relabel((s for i in base for s in val[i]), base, base_names),
        train_novel=_relabel((s for i in novel for s in train[i]), novel, novel_names),
        test_base=_relabel(test, base, base_names),
        test_novel=_relabel(test, novel, novel_names),
        short_classes=short,
    )
    for name in ("test_base", "test_novel"):
        if not split.part(name):
            raise DataError(f"dataset {ds.info.name!r} has no test images for its {name[5:]} classes")
    _record_untested(split)
    if check:
        for name in PARTS:
            ds.check_samples(split.part(name))
    return split


def _record_untested(split: TaskSplit) -> None:
    """Classes without a test image: their accuracy is undefined and the averages quietly skip
    them, so each one is a warning and an entry (part "test") in ``short_classes``."""
    counts = split.counts()
    untested = [name for part, names in (("test_base", split.base_classnames), ("test_novel", split.novel_classnames))
                for name, n in zip(names, counts[part]) if n == 0]
    for name in untested:
        split.short_classes.append({"part": "test", "classname": name, "available": 0, "wanted": 1})
    if untested:
        log.warning("%d class(es) have no test images and are not evaluated: %s", len(untested), ", ".join(map(repr, untested)))


def _warn_short(short: list[dict], shots: int) -> None:
    train_short = [s for s in short if s["part"] == "train"]
    if train_short:
        examples = ", ".join(f"{s['classname']!r} ({s['available']})" for s in train_short[:3])
        log.warning("%d class(es) have fewer than %d training images, using all they have: %s%s",
                    len(train_short), shots, examples, ", ..." if len(train_short) > 3 else "")
    val_short = [s for s in short if s["part"] == "val"]
    if val_short:
        log.warning("%d class(es) have fewer validation images than wanted (first: %r, %d)",
                    len(val_short), val_short[0]["classname"], val_short[0]["available"])
