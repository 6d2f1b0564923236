"""Template scoring: template -> one prompt per class -> text embeddings -> accuracy and loss.

Logits are ``vlm.logit_scale * cos(image, text)``. Text embeddings are cached by
(``model_id``, exact text) in memory and on disk, so a candidate only costs the prompts the
cache has never seen; all uncached prompts of all candidates go to the text encoder in one
call (which batches them by length). Image features are passed in, already computed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ipo_vlm.engine.features import VectorLog, key_bytes
from ipo_vlm.errors import ConfigError
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.io.paths import cache_dir
from ipo_vlm.prompting.placeholders import fill, template_problem
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)

def accuracy_and_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and mean softmax cross-entropy of (n, C) logits against (n,) labels."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    picked = logits[np.arange(len(labels)), labels]
    return float(np.mean(logits.argmax(axis=1) == labels)), float(np.mean(lse - picked))


class Scorer:
    """Scores templates for one VLM on precomputed image features.

    ``cache_root=None`` keeps text embeddings under ``cache_dir("text")``; pass a directory to
    isolate them (tests), or ``False`` for an in-memory cache only.
    """

    def __init__(self, vlm: "VisionLanguageModel", cache_root: str | Path | Literal[False] | None = None) -> None:
        self.vlm = vlm
        meta = {"model_id": vlm.model_id}
        if cache_root is False:
            directory = None
        else:
            root = Path(cache_root) if cache_root is not None else cache_dir("text")
            directory = root / sha256_json(meta)[:24]
        self._log = VectorLog(directory, meta=meta) if directory is not None else None
        #: embeddings held in this process only when there is no on-disk log to map them from
        self._memory: dict[bytes, np.ndarray] = {}
        self.stats: dict[str, int] = {"text_hits": 0, "text_encoded": 0}

    # -- validity -------------------------------------------------------------------------
    def check(self, template: str, classnames: Sequence[str]) -> str | None:
        """The reason ``template`` cannot be scored for these classes, or None if it can."""
        problem = template_problem(template, stray_braces=True)
        if problem:
            return problem
        return self.length_problem(template, classnames)

    def length_problem(self, template: str, classnames: Sequence[str]) -> str | None:
        """Which class's prompt is over the text encoder's token limit, and by how much, or None."""
        limit = int(self.vlm.max_text_tokens)
        by_parts = getattr(self.vlm, "count_filled_tokens", None)  # a backend's exact shortcut
        counts = by_parts(template, classnames) if by_parts else self.vlm.count_tokens([fill(template, c) for c in classnames])
        for name, n in zip(classnames, counts):
            if n > limit:
                return f"{n} tokens, over the {limit}-token limit for class {name!r}"
        return None

    # -- text embeddings ------------------------------------------------------------------
    def _cached(self, key: bytes) -> np.ndarray | None:
        return self._log.get(key) if self._log is not None else self._memory.get(key)

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) L2-normalised embeddings; only texts never seen before are encoded."""
        return self._embeddings(texts, [key_bytes(t) for t in texts])

    def _embeddings(self, texts: Sequence[str], keys: Sequence[bytes]) -> np.ndarray:
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k not in todo and self._cached(k) is None:
                todo[k] = t
        self.stats["text_hits"] += len(texts) - len(todo)
        if todo:
            new = np.asarray(self.vlm.encode_texts(list(todo.values())), dtype=np.float32)
            self.stats["text_encoded"] += len(todo)
            if self._log is not None:
                self._log.put_many(list(todo), new)
            else:
                self._memory.update(zip(todo, new))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cached(k) for k in keys])

    def class_embeddings(self, template: str, classnames: Sequence[str]) -> np.ndarray:
        """(C, d) text embeddings of ``template`` filled with each class name."""
        self._require_valid([template], classnames)
        return self.text_embeddings([fill(template, c) for c in classnames])

    def _require_valid(self, templates: Sequence[str], classnames: Sequence[str], keys: Sequence[bytes] | None = None) -> None:
        """``keys``: the prompts' cache keys, template by template (computed when not given)."""
        if not classnames:
            raise ConfigError("no class names to score against")
        n = len(classnames)
        for i, t in enumerate(templates):
            problem = template_problem(t, stray_braces=True)
            if problem is None:
                own = keys[i * n : (i + 1) * n] if keys is not None else [key_bytes(fill(t, c)) for c in classnames]
                uncached = [c for c, k in zip(classnames, own) if self._cached(k) is None]
                problem = self.length_problem(t, uncached) if uncached else None
            if problem:
                raise ConfigError(f"template {t!r} rejected: {problem}")

    # -- scores ---------------------------------------------------------------------------
    def score(
        self,
        templates: Sequence[str],
        classnames: Sequence[str],
        image_features: np.ndarray,
        labels: Sequence[int] | np.ndarray,
    ) -> list[ScoredTemplate]:
        """Accuracy and mean CE loss of each template over all images, in input order.

        Raises ``ConfigError`` for a template with a bad placeholder or a prompt over the
        text encoder's token limit (nothing is scored then); prompts are never truncated.
        """
        feats = np.asarray(image_features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        if feats.ndim != 2 or len(feats) != len(labels):
            raise ValueError(f"image_features {feats.shape} and labels {labels.shape} do not match")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classnames)):
            raise ValueError(f"labels must lie in [0, {len(classnames)})")
        if not len(labels):
            raise ValueError("no images to score on")
        # each prompt is filled and hashed once; one encoder call for every new prompt of every candidate
        prompts = [fill(t, c) for t in templates for c in classnames]
        keys = [key_bytes(p) for p in prompts]
        self._require_valid(templates, classnames, keys)
        text = self._embeddings(prompts, keys).reshape(len(templates), len(classnames), -1)
        scale = float(self.vlm.logit_scale)
        results = []
        for t, emb in zip(templates, text):
            acc, loss = accuracy_and_loss(scale * feats @ emb.astype(np.float64).T, labels)
            results.append(ScoredTemplate(template=t, accuracy=acc, loss=loss))
        return results

    def predict(self, template: str, classnames: Sequence[str], image_features: np.ndarray) -> np.ndarray:
        """The class index each image is assigned under ``template`` (argmax of the logits)."""
        text = self.class_embeddings(template, classnames).astype(np.float64)
        return (np.asarray(image_features, dtype=np.float64) @ text.T).argmax(axis=1)
