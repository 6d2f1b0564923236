"""Labelling new images with what a run found: its VLM and its best template (or an ensemble).

Probabilities are the softmax of ``logit_scale * cos(image, class text)`` over *all* of the
run's classes (base and novel). Images are decoded the way dataset images are
(``data.files.open_rgb``) and encoded in batches by the VLM; a file that cannot be read is
reported and skipped, so one bad file never costs the rest."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ipo_vlm.errors import ConfigError, DataError
from ipo_vlm.runs.run import Run

if TYPE_CHECKING:
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    path: str
    top: list[tuple[str, float]]  # (class name, probability), most probable first


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str


@dataclass
class Classification:
    templates: list[str]
    classnames: list[str]
    predictions: list[Prediction] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def collect_images(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Failure]]:
    """Files as given, and the image files under directories (walked in sorted order, hidden
    entries skipped); a path that does not exist is a failure."""
    from ipo_vlm.data.files import is_image_name

    files: list[Path] = []
    failures: list[Failure] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found = []
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / n for n in sorted(names) if is_image_name(n)]
            if not found:
                log.warning("no image files under %s", path)
            files += found
        elif path.exists():
            files.append(path)
        else:
            failures.append(Failure(str(path), "no such file or directory"))
    return files, failures


def class_weights(vlm: "VisionLanguageModel", templates: Sequence[str], classnames: Sequence[str]) -> np.ndarray:
    """(C, d) class embeddings of the template (or ensemble) through the scorer's text cache."""
    from ipo_vlm.engine.ensemble import ensemble_class_embeddings
    from ipo_vlm.engine.scoring import Scorer

    return ensemble_class_embeddings(Scorer(vlm), templates, classnames)


def probabilities(image_features: np.ndarray, weights: np.ndarray, logit_scale: float) -> np.ndarray:
    """Softmax over classes of ``logit_scale * cos``; rows of both inputs are unit vectors."""
    logits = float(logit_scale) * np.asarray(image_features, dtype=np.float64) @ weights.T
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def classify_images(
    run: str | Path,
    inputs: Sequence[str | Path],
    ensemble: int | None = None,
    top: int = 5,
    vlm: "VisionLanguageModel | None" = None,
    batch_size: int = 32,
    report: Callable[[Prediction | Failure], Any] | None = None,
    vlm_options: dict[str, Any] | None = None,
) -> Classification:
    """Classify image files (and the images under directories) with the run's VLM and best
    template, or its top-``ensemble`` templates by the run's selection key. ``report`` sees each
    prediction or failure as soon as it is known."""
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    finished = Run.open(run, need_result=True)
    templates = finished.top(ensemble) if ensemble is not None else [finished.require_result().best_template]
    classnames, _, _ = finished.classnames()
    files, missing = collect_images(inputs)
    if not files and not missing:
        raise DataError("no image files among the given paths")
    out = Classification(templates, classnames)
    say = report or (lambda item: None)
    for f in missing:
        out.failures.append(f)
        say(f)
    if not files:
        return out
    if vlm is None:
        from ipo_vlm.vlm import create_vlm

        vlm = create_vlm(finished.vlm, **{**finished.vlm_options, **(vlm_options or {})})
    weights = class_weights(vlm, templates, classnames)
    k = min(top, len(classnames))
    for start in range(0, len(files), batch_size):
        _classify_batch(vlm, files[start : start + batch_size], weights, classnames, k, out, say)
    return out


def _classify_batch(vlm: Any, paths: list[Path], weights: np.ndarray, classnames: list[str], k: int,
                    out: Classification, say: Callable[[Prediction | Failure], Any]) -> None:
    from ipo_vlm.data.files import open_rgb

    images, good = [], []
    for path in paths:
        try:
            images.append(open_rgb(path))
            good.append(path)
        except DataError as e:
            failure = Failure(str(path), str(e).removeprefix(f"cannot read image {path}: "))
            out.failures.append(failure)
            say(failure)
    if not images:
        return
    feats = np.asarray(vlm.encode_images(images), dtype=np.float64)
    probs = probabilities(feats, weights, vlm.logit_scale)
    for path, row in zip(good, probs):
        order = np.argsort(-row, kind="stable")[:k]
        pred = Prediction(str(path), [(classnames[i], float(row[i])) for i in order])
        out.predictions.append(pred)
        say(pred)
