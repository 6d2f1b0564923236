"""Prompt ensembles: several templates combined into one zero-shot classifier.

Each template gives a (C, d) matrix of class text embeddings; the ensemble's class embedding
is the mean over templates of the L2-normalised rows, normalised again (CLIP's recipe for its
80 ImageNet templates). Logits stay ``logit_scale * cos(image, class)``, so an ensemble is
scored exactly like a single template and a one-template ensemble *is* that template."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ipo_vlm.errors import ConfigError


class ClassEmbedder(Protocol):
    """What an ensemble needs from a scorer (``ipo_vlm.engine.scoring.Scorer`` fits)."""

    def class_embeddings(self, template: str, classnames: Sequence[str]) -> np.ndarray: ...


def _normalize_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def ensemble_class_embeddings(embedder: ClassEmbedder, templates: Sequence[str], classnames: Sequence[str]) -> np.ndarray:
    """(C, d) float64: per class, the normalised mean of the templates' normalised embeddings."""
    if not templates:
        raise ConfigError("an ensemble needs at least one template")
    if not classnames:
        raise ConfigError("no class names to build an ensemble for")
    total: np.ndarray | None = None
    for template in templates:
        emb = _normalize_rows(np.asarray(embedder.class_embeddings(template, classnames), dtype=np.float64))
        total = emb if total is None else total + emb
    assert total is not None
    return _normalize_rows(total / len(templates))


def ensemble_logits(
    embedder: ClassEmbedder,
    templates: Sequence[str],
    classnames: Sequence[str],
    image_features: np.ndarray,
    logit_scale: float,
) -> np.ndarray:
    """(n, C) logits ``logit_scale * cos(image, ensemble class embedding)``."""
    feats = np.asarray(image_features, dtype=np.float64)  # rows already L2-normalised by the VLM
    return float(logit_scale) * feats @ ensemble_class_embeddings(embedder, templates, classnames).T


def ensemble_accuracy_and_loss(
    embedder: ClassEmbedder,
    templates: Sequence[str],
    classnames: Sequence[str],
    image_features: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    logit_scale: float,
) -> tuple[float, float]:
    """Top-1 accuracy and mean cross-entropy of the ensemble on labelled image features;
    ``logit_scale`` is the VLM's (``vlm.logit_scale``)."""
    from ipo_vlm.engine.scoring import accuracy_and_loss

    labels = np.asarray(labels, dtype=np.int64)
    logits = ensemble_logits(embedder, templates, classnames, image_features, logit_scale)
    if len(labels) != len(logits):
        raise ValueError(f"{len(logits)} image features but {len(labels)} labels")
    return accuracy_and_loss(logits, labels)
