"""``demo:fashion-shifted`` — the stand-in VLM of the shifted demo condition. It is *not* CLIP.

Where ``demo:fashion`` keeps the sentence encoder's embedding as it is, this model puts a small
trainable residual MLP (the *text head*) on top of the frozen all-MiniLM-L6-v2 and trains it
jointly with its own image tower, as CLIP trains both towers. Its pretraining images are
Fashion-MNIST items shown in several media (photo, sketch, negative, blurry, pixelated) with
web-like captions that sometimes name the medium, sometimes the class, sometimes both
(``scripts/train_demo_vlm_shifted.py``). The rarer media are mostly captioned with their medium
word, and the head learns where their images land, so on out-of-focus items "a blurry photo of
a {}." classifies clearly better than "a photo of a {}." and a wrong medium word worse: a
template's context words matter on a shifted domain, as they do for CLIP.

Both towers ship in one safetensors file (``image.*`` and ``text_head.*`` tensors) in
``ipo_vlm/assets/demo_vlm_shifted/``, with a sha256 file checked on every load, the attribute
vocabulary the interrogate captioner uses (it names the medium, never a class) and the template
list ``scripts/demo_templates.py`` measures.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.vlm.demo import (
    DEFAULT_ARCH,
    PREPROCESS_ID,
    TEXT_MAX_TOKENS,
    ImageTowerMixin,
    build_image_tower,
    read_checked_weights,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

NAME = "fashion-shifted"
WEIGHTS_NAME = "towers.safetensors"
CHECKSUM_NAME = "towers.sha256"
#: the text head's widths; stored in the weights' metadata too
DEFAULT_TEXT_ARCH: dict[str, Any] = {"embed_dim": DEFAULT_ARCH["embed_dim"], "hidden": 512}
_BATCH = 256


def shifted_assets_dir() -> Path:
    """The folder holding the shipped towers, checksum, vocabulary and template list."""
    return Path(str(resources.files("ipo_vlm") / "assets" / "demo_vlm_shifted"))


def build_text_head(arch: dict[str, Any]) -> Any:
    """The residual MLP applied to a frozen sentence embedding ``e``: ``normalize(e + mlp(e))``.

    Shared by the backend and the training script. The last layer starts at zero, so training
    starts from the sentence encoder's own geometry and moves away only where captions demand."""
    from torch import nn

    mlp = nn.Sequential(nn.Linear(arch["embed_dim"], arch["hidden"]), nn.GELU(),
                        nn.Linear(arch["hidden"], arch["embed_dim"]))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


def apply_text_head(head: Any, sentence_embeddings: Any) -> Any:
    """(n, d) torch tensor of sentence embeddings -> (n, d) normalised joint-space embeddings."""
    import torch

    return torch.nn.functional.normalize(sentence_embeddings + head(sentence_embeddings), dim=-1)


def split_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One file's tensors -> (image tower state, text head state) by their key prefix."""
    image = {k[len("image."):]: v for k, v in state.items() if k.startswith("image.")}
    text = {k[len("text_head."):]: v for k, v in state.items() if k.startswith("text_head.")}
    return image, text


class DemoShiftedVLM(ImageTowerMixin):
    """The ``demo:fashion-shifted`` backend; see the module docstring. Build it with
    ``load_demo("fashion-shifted")``."""

    preprocess_id = PREPROCESS_ID
    max_text_tokens = TEXT_MAX_TOKENS

    def __init__(self, weights: Path, checksum_file: Path, text_dir: Path | None = None) -> None:
        def build(meta: dict[str, str], state: dict[str, Any]) -> None:
            image_state, text_state = split_state(state)
            self.logit_scale = float(meta["logit_scale"])
            self._tower = build_image_tower(json.loads(meta["arch"]))
            self._tower.load_state_dict(image_state)
            self._head = build_text_head(json.loads(meta["text_arch"]))
            self._head.load_state_dict(text_state)
            self._head.eval()

        digest = read_checked_weights(weights, checksum_file, build)
        self._finish_loading(NAME, digest, weights, text_dir)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text including [CLS] and [SEP], without truncation."""
        return self._text.count_tokens(texts)

    def encode_sentences(self, sentence_embeddings: "np.ndarray") -> "np.ndarray":
        """Frozen all-MiniLM-L6-v2 embeddings -> this model's text embeddings."""
        import numpy as np

        torch = self._torch
        with torch.inference_mode():
            out = apply_text_head(self._head, torch.from_numpy(np.ascontiguousarray(sentence_embeddings)))
        return out.numpy().astype(np.float32, copy=False)

    def encode_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """(n, 384) float32, L2-normalised; a ``ConfigError`` if a text exceeds 256 tokens."""
        return self.encode_sentences(self._text.encode(texts))


def load_shifted(weights: str | Path | None = None) -> DemoShiftedVLM:
    """The shipped model, or another trained file (its ``<stem>.sha256`` must sit beside it)."""
    path = Path(weights) if weights else shifted_assets_dir() / WEIGHTS_NAME
    log.info("loading demo VLM towers from %s", path)
    return DemoShiftedVLM(path, path.with_suffix(".sha256"))


__all__ = ["DemoShiftedVLM", "apply_text_head", "build_text_head", "load_shifted", "shifted_assets_dir"]
