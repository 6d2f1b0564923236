"""``interrogate``: offline, LMM-free image descriptions from the run's own VLM.

In the spirit of CLIP-Interrogator: every attribute phrase of a vocabulary (colours, textures,
shapes, materials, settings, viewpoints, lighting) is encoded once with the VLM's text encoder;
an image is encoded with its image encoder, and in each attribute group the phrases compete on
``logit_scale * cosine``. A group speaks only if its best phrase beats the runner-up by
``min_margin`` logits (e^2 ~ 7x more likely at the default 2), a test that does not depend on
how many phrases the group has, and by at least ``rel_margin`` times the margin of the image's
strongest group, because weak groups are mostly noise: on the demo VLM its own attribute groups
win by a median 8-10 logits, generic groups it was never trained on by 0.3-1.3 (but 2-4 for one
image in ten). The kept phrases are joined into one sentence. Deterministic: same VLM,
vocabulary and image, same text.

The captioner cannot follow an instruction; it describes what its vocabulary can express."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.captioner.vocabulary import Vocabulary, load_vocabulary
from ipo_vlm.errors import ConfigError
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.registry import nonnegative_float, positive_int, takes_options, text

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribute:
    """One group's verdict on one image."""

    group: str
    phrase: str
    #: logits by which the phrase beats the group's runner-up (0 for a one-phrase group: no
    #: alternative, no evidence)
    margin: float


class Interrogator:
    """Describes images by ranking attribute phrases with a ``VisionLanguageModel``."""

    def __init__(self, vlm: "VisionLanguageModel", vocabulary: Vocabulary,
                 max_attributes: int = 4, min_margin: float = 2.0, rel_margin: float = 0.5) -> None:
        if max_attributes < 1:
            raise ConfigError(f"interrogate max_attributes must be >= 1, got {max_attributes}")
        if min_margin < 0.0:
            raise ConfigError(f"interrogate min_margin must be >= 0 (logits), got {min_margin}")
        if not 0.0 <= rel_margin <= 1.0:
            raise ConfigError(f"interrogate rel_margin must be in [0, 1], got {rel_margin}")
        self.vlm = vlm
        self.vocabulary = vocabulary
        self.max_attributes = max_attributes
        self.min_margin = min_margin
        self.rel_margin = rel_margin
        params = {"vocabulary": vocabulary.as_dict(), "max_attributes": max_attributes,
                  "min_margin": min_margin, "rel_margin": rel_margin}
        self.model_id = f"interrogate:{vlm.model_id}:{sha256_json(params)[:16]}"
        self._phrase_embeddings: list["np.ndarray"] | None = None

    def _embeddings(self) -> list["np.ndarray"]:
        """Per group, the (n_phrases, d) text embeddings; encoded once per captioner."""
        if self._phrase_embeddings is None:
            groups = self.vocabulary.groups
            texts = [g.prompt.replace("{}", p) for g in groups for p in g.phrases]
            flat = self.vlm.encode_texts(texts)
            out, start = [], 0
            for g in groups:
                out.append(flat[start : start + len(g.phrases)])
                start += len(g.phrases)
            self._phrase_embeddings = out
            log.info("interrogate: encoded %d attribute phrases in %d groups", len(texts), len(groups))
        return self._phrase_embeddings

    def attributes(self, image_features: "np.ndarray") -> list[list[Attribute]]:
        """For each image feature row: the groups that speak, strongest first, at most
        ``max_attributes`` (always at least the strongest group, so no image goes undescribed)."""
        import numpy as np

        scale = float(getattr(self.vlm, "logit_scale", 100.0))
        feats = np.asarray(image_features, dtype=np.float64)
        per_group = []
        for group, emb in zip(self.vocabulary.groups, self._embeddings()):
            logits = scale * (feats @ np.asarray(emb, dtype=np.float64).T)
            best = logits.argmax(axis=1)
            top = logits[np.arange(len(best)), best]
            if logits.shape[1] > 1:
                margin = top - np.partition(logits, -2, axis=1)[:, -2]
            else:
                margin = np.zeros(len(best))
            per_group.append((group, best, margin))
        result = []
        for i in range(len(feats)):
            found = [Attribute(g.name, g.phrases[int(best[i])], float(margin[i])) for g, best, margin in per_group]
            # Sort by strength; ties keep vocabulary order (sorted() is stable).
            ranked = sorted(found, key=lambda a: -a.margin)
            bar = max(self.min_margin, self.rel_margin * ranked[0].margin)
            keep = [a for a in ranked if a.margin >= bar][: self.max_attributes] or ranked[:1]
            result.append(keep)
        return result

    def _sentence(self, attrs: list[Attribute]) -> str:
        # Vocabulary order reads more naturally than strength order ("red, striped, on grass").
        order = {g.name: i for i, g in enumerate(self.vocabulary.groups)}
        phrases = [a.phrase for a in sorted(attrs, key=lambda a: order[a.group])]
        return self.vocabulary.sentence.replace("{}", ", ".join(phrases))

    def describe(self, images: Sequence["Image.Image"], instruction: str = "") -> list[str]:
        """One sentence per image; ``instruction`` is ignored (there is no language model)."""
        if not images:
            return []
        features = self.vlm.encode_images(images)
        return [self._sentence(attrs) for attrs in self.attributes(features)]


@takes_options(vocabulary=text, max_attributes=positive_int, min_margin=nonnegative_float, rel_margin=nonnegative_float)
def load_interrogate(
    name: str = "", *, vlm: "VisionLanguageModel | None" = None,
    vocabulary: str | Path | Mapping[str, Any] | None = None,
    max_attributes: int = 4, min_margin: float = 2.0, rel_margin: float = 0.5, **_: Any,
) -> Interrogator:
    """Factory for ``interrogate`` and ``interrogate:/path/to/vocabulary.json``.

    ``vlm`` is the run's model (required); other unknown options are ignored."""
    if vlm is None:
        raise ConfigError("the interrogate captioner needs the run's VLM (create_captioner(spec, vlm=...))")
    vocab = load_vocabulary(vocabulary if vocabulary is not None else (name or None), vlm=vlm)
    return Interrogator(vlm, vocab, max_attributes=max_attributes, min_margin=min_margin, rel_margin=rel_margin)
