"""``open_clip:<arch>@<pretrained-or-path>``: an open_clip model (optional extra ``openclip``).

open_clip imports torchvision, which does not install beside every torch build, so it is an
optional dependency: without it this backend fails with a ``BackendError`` naming the extra.
Images go through open_clip's own evaluation transform; texts are padded to the model's full
context because open_clip's text towers add positional embeddings for the whole context.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.io.hashing import file_fingerprint
from ipo_vlm.registry import device, positive_int, takes_options

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'ipo-vlm[openclip]'"


def parse_name(name: str) -> tuple[str, str]:
    """``"ViT-B-16@openai"`` -> ``("ViT-B-16", "openai")``."""
    arch, sep, pretrained = name.partition("@")
    if not arch.strip() or not sep or not pretrained.strip():
        raise ConfigError(f"open_clip spec needs <arch>@<pretrained-or-path>, e.g. open_clip:ViT-B-16@openai; got {name!r}")
    return arch.strip(), pretrained.strip()


class OpenClipModel:
    """An open_clip model behind the ``VisionLanguageModel`` protocol."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, model_id: str, device: str, batch_size: int) -> None:
        self.model = model
        self._preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        self.preprocess_id = "open_clip-" + hashlib.sha256(repr(preprocess).encode()).hexdigest()[:12]
        self.logit_scale = float(model.logit_scale.detach().float().exp().item())
        self.max_text_tokens = int(getattr(tokenizer, "context_length", 77))

    def encode_images(self, images: Sequence["Image.Image"]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised."""
        import torch

        out = []
        for i in range(0, len(images), self.batch_size):
            x = torch.stack([self._preprocess(im.convert("RGB")) for im in images[i : i + self.batch_size]])
            with torch.inference_mode():
                out.append(_normalise(self.model.encode_image(x.to(self.device))))
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token counts with start/end tokens, measured without the tokenizer's truncation."""
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None:
            raise BackendError("this open_clip tokenizer cannot count tokens without truncating")
        return [len(encode(t)) + 2 for t in texts]

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised; a text over the context raises ConfigError."""
        import torch

        for text, n in zip(texts, self.count_tokens(texts)):
            if n > self.max_text_tokens:
                raise ConfigError(f"prompt {text!r} has {n} tokens, over the {self.max_text_tokens}-token limit")
        out = []
        for i in range(0, len(texts), 128):
            tokens = self.tokenizer(list(texts[i : i + 128]))
            with torch.inference_mode():
                out.append(_normalise(self.model.encode_text(tokens.to(self.device))))
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def _normalise(feats: Any) -> np.ndarray:
    x = feats.float().cpu().numpy()
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


@takes_options(device=device, batch_size=positive_int)
def load_open_clip(name: str, device: str = "cpu", batch_size: int = 32, **unused: Any) -> OpenClipModel:
    """Factory for ``open_clip:<arch>@<pretrained-or-path>`` (options: device, batch_size)."""
    arch, pretrained = parse_name(name)
    try:
        import open_clip
    except ImportError:
        raise BackendError(f"the open_clip VLM backend needs open_clip: {EXTRA_HINT}") from None
    path = Path(pretrained).expanduser()
    is_file = path.is_file()
    if not is_file and pretrained.startswith(("/", ".", "~")):
        raise BackendError(f"no open_clip checkpoint at {path}")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(path) if is_file else pretrained, device=device)
        tokenizer = open_clip.get_tokenizer(arch)
    except (RuntimeError, OSError, ValueError) as e:
        raise BackendError(f"cannot load open_clip {arch}@{pretrained}: {str(e).splitlines()[0]}") from None
    tag = f"{path.name}#{file_fingerprint(path)}" if is_file else pretrained
    log.info("loaded open_clip %s@%s", arch, tag)
    return OpenClipModel(model.eval(), preprocess, tokenizer, f"open_clip:{arch}@{tag}", device, batch_size)
