"""``hf:<repo-id-or-path>``: a transformers CLIP (or SigLIP-style) model.

The weights come from a local directory or the Hugging Face cache; ``HF_HUB_OFFLINE=1`` (or
``TRANSFORMERS_OFFLINE=1``) forbids any download. CLIP images are preprocessed by
:mod:`ipo_vlm.vlm.preprocess` (no torchvision needed); texts are encoded in batches sorted by
length and padded only to each batch's longest prompt, which is exact for CLIP's causal text
encoder. Models whose text encoder is not causal (SigLIP) are padded to their full context.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.io.hashing import file_fingerprint
from ipo_vlm.prompting.placeholders import fill
from ipo_vlm.registry import boolean, device, one_of, positive_int, takes_options
from ipo_vlm.vlm.hub import hub_local_only, hub_offline
from ipo_vlm.vlm.clip_prefix import encode_shared_prefixes, prefix_groups
from ipo_vlm.vlm.preprocess import ClipTransform

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_MODEL = "openai/clip-vit-base-patch16"
_DTYPES = ("float32", "float16", "bfloat16")
#: text encoders whose causal mask makes right-padding exact (pad to the batch's longest)
_CAUSAL_TEXT = ("clip",)


def _how_to_get(name: str) -> str:
    return (f"download the weights once where there is internet (`huggingface-cli download {name}`)"
            " and copy the Hugging Face cache here, or pass a local directory: --vlm hf:/path/to/model")


def _missing_model_message(name: str) -> str:
    return (
        f"VLM weights {name!r} not found locally"
        + (" (HF_HUB_OFFLINE is set)" if hub_offline() else " and not downloadable (set HF_HUB_OFFLINE=1 to skip the try)")
        + f"; {_how_to_get(name)}"
    )


def weights_fingerprint(directory: Path) -> str:
    """Short hash of a checkpoint's config, tokenizer and weight files (sampled when large, see
    :func:`ipo_vlm.io.hashing.update_with_file_sample`)."""
    files = sorted(p for p in directory.iterdir() if p.suffix in (".json", ".txt", ".safetensors", ".bin"))
    return file_fingerprint(*(p for p in files if not p.name.startswith(".") and p.is_file()))


class HFVisionLanguageModel:
    """A loaded transformers dual encoder behind the ``VisionLanguageModel`` protocol."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        preprocess: Callable[[Sequence["Image.Image"]], np.ndarray],
        *,
        model_id: str,
        preprocess_id: str,
        device: str = "cpu",
        batch_size: int = 32,
        text_batch_size: int = 128,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._preprocess = preprocess
        self.model_id = model_id
        self.preprocess_id = preprocess_id
        self.device = device
        self.batch_size = batch_size
        self.text_batch_size = text_batch_size
        cfg = model.config
        self.model_type: str = getattr(cfg, "model_type", "clip")
        self.max_text_tokens: int = int(cfg.text_config.max_position_embeddings)
        self.logit_scale: float = float(model.logit_scale.detach().float().exp().item())
        self.pad_to_longest: bool = self.model_type in _CAUSAL_TEXT
        #: encode a shared prompt start once per group (needs CLIPModel's module layout)
        self.share_prefix: bool = self.pad_to_longest and hasattr(model, "text_model") and hasattr(model, "text_projection")
        self._dtype = next(model.parameters()).dtype
        self._filled: Any = None

    def __repr__(self) -> str:
        return f"HFVisionLanguageModel({self.model_id!r}, device={self.device!r})"

    # -- images ---------------------------------------------------------------------------
    def encode_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed (n, 3, H, W) pixels -> (n, d) L2-normalised float32."""
        import torch

        out = []
        for i in range(0, len(pixels), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(pixels[i : i + self.batch_size]))
            with torch.inference_mode():
                feats = _features(self.model.get_image_features(pixel_values=x.to(self.device, self._dtype)))
            out.append(_normalise(feats))
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    def encode_images(self, images: Sequence["Image.Image"]) -> np.ndarray:
        """(n, d) float32, rows L2-normalised. Preprocessing is done batch by batch."""
        out = [
            self.encode_pixels(self._preprocess(images[i : i + self.batch_size]))
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), dtype=np.float32)

    @property
    def dim(self) -> int:
        """Width of the joint embedding space."""
        cfg = self.model.config
        dim = getattr(cfg, "projection_dim", None) or getattr(cfg.text_config, "projection_size", None)
        return int(dim or cfg.text_config.hidden_size)

    # -- texts ----------------------------------------------------------------------------
    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), padding=False, truncation=False)["input_ids"]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Token count of each text including start/end tokens, never truncated."""
        return [len(ids) for ids in self._token_ids(texts)] if texts else []

    def count_filled_tokens(self, template: str, classnames: Sequence[str]) -> list[int]:
        """``count_tokens`` of ``template`` filled with each class name; for CLIP's tokenizer
        without tokenising every prompt (exact, see :mod:`ipo_vlm.vlm.clip_tokens`)."""
        if not type(self.tokenizer).__name__.startswith("CLIPTokenizer"):  # other word splits: no shortcut
            return self.count_tokens([fill(template, c) for c in classnames])
        if self._filled is None:
            from ipo_vlm.vlm.clip_tokens import FilledTokenCounter

            self._filled = FilledTokenCounter(self.count_tokens)
        return self._filled.counts(template, classnames)

    def encode_texts(self, texts: Sequence[str], pad_to: str | None = None) -> np.ndarray:
        """(n, d) float32, rows L2-normalised, in input order.

        By default prompts sharing a start (one template's prompts for all classes) encode the
        shared tokens once (:mod:`ipo_vlm.vlm.clip_prefix`); the rest go in batches sorted by
        token count, each padded only to its own longest prompt. ``pad_to="longest"`` skips the
        prefix sharing; ``pad_to="max_length"`` pads every prompt to the full context, as a
        plain CLIP pipeline does. All three agree to float rounding (CLIP's mask is causal).
        A text over ``max_text_tokens`` raises ``ConfigError``: it is never truncated.
        """
        if pad_to not in (None, "longest", "max_length"):
            raise ValueError(f"pad_to must be None, 'longest' or 'max_length', not {pad_to!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self._token_ids(texts)
        for text, row in zip(texts, ids):
            if len(row) > self.max_text_tokens:
                raise ConfigError(
                    f"prompt {text!r} has {len(row)} tokens, over the {self.max_text_tokens}-token limit"
                )
        full = pad_to == "max_length" or not self.pad_to_longest
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        rest: list[int] = list(range(len(ids)))
        if pad_to is None and self.share_prefix:
            groups, rest = prefix_groups(ids, self.text_batch_size)
            # groups with similar suffix lengths share a pack, so little padding is computed
            groups.sort(key=lambda pg: max(len(ids[i]) - pg[0] for i in pg[1]))
            for pack in _packs(groups, self.text_batch_size):
                idx = [i for _, g in pack for i in g]
                out[idx] = self._encode_prefix_pack(ids, pack)
        order = sorted(rest, key=lambda i: len(ids[i]))
        for start in range(0, len(order), self.text_batch_size):
            chunk = order[start : start + self.text_batch_size]
            width = self.max_text_tokens if full else max(len(ids[i]) for i in chunk)
            out[chunk] = self._encode_token_batch([ids[i] for i in chunk], width)
        return out

    def _encode_prefix_pack(self, ids: list[list[int]], pack: list[tuple[int, list[int]]]) -> np.ndarray:
        import torch

        groups = [(ids[g[0]][:plen], [ids[i][plen:] for i in g]) for plen, g in pack]
        with torch.inference_mode():
            feats = encode_shared_prefixes(self.model, groups, self._pad_id())
        return _normalise(feats)

    def _pad_id(self) -> int:
        pad_id = self.tokenizer.pad_token_id
        return int(self.tokenizer.eos_token_id if pad_id is None else pad_id)

    def _encode_token_batch(self, rows: list[list[int]], width: int) -> np.ndarray:
        import torch

        input_ids = torch.full((len(rows), width), self._pad_id(), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[r, : len(row)] = 1
        kwargs: dict[str, Any] = {"input_ids": input_ids.to(self.device)}
        if self.pad_to_longest:
            kwargs["attention_mask"] = mask.to(self.device)
        with torch.inference_mode():
            return _normalise(_features(self.model.get_text_features(**kwargs)))


def _packs(groups: list[tuple[int, list[int]]], max_rows: int) -> list[list[tuple[int, list[int]]]]:
    """Consecutive groups packed into batches of at most ``max_rows`` prompts."""
    packs: list[list[tuple[int, list[int]]]] = []
    rows = 0
    for group in groups:
        if not packs or rows + len(group[1]) > max_rows:
            packs.append([])
            rows = 0
        packs[-1].append(group)
        rows += len(group[1])
    return packs


def _features(out: Any) -> Any:
    """transformers 5 returns a model output (projected features in ``pooler_output``); 4.x a tensor."""
    return out if hasattr(out, "dim") else out.pooler_output


def _normalise(feats: Any) -> np.ndarray:
    x = feats.float().cpu().numpy()
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if device != "cpu" and not device.startswith(("cuda", "mps")):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


def _locate(name: str) -> tuple[Path | None, str]:
    """(local directory or None, the identifier passed to from_pretrained)."""
    if not name:
        raise ConfigError(f"hf: needs a model, e.g. hf:{DEFAULT_MODEL} or hf:/path/to/model")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"{path} has no config.json; it is not a transformers model directory")
        return path, str(path)
    if name.startswith(("/", ".", "~")) or os.sep + os.sep in name or name.count("/") > 1:
        raise BackendError(f"no model directory at {path}")
    return None, name


def _snapshot_dir(repo_id: str) -> Path:
    """The cached snapshot directory of a hub model, or BackendError if it is not there."""
    from transformers.utils import cached_file

    try:
        config = cached_file(repo_id, "config.json", local_files_only=True)
    except OSError:
        raise BackendError(_missing_model_message(repo_id)) from None
    if config is None:
        raise BackendError(_missing_model_message(repo_id))
    return Path(config).parent


def _transform_from_processor(directory: str, local_only: bool) -> tuple[Callable, str]:
    """CLIP-style processors run through our PIL+numpy transform; others through transformers'."""
    from transformers import AutoImageProcessor

    proc = AutoImageProcessor.from_pretrained(directory, local_files_only=local_only, backend="pil")
    size = getattr(proc, "size", None) or {}
    crop = getattr(proc, "crop_size", None) or {}
    resample = int(getattr(proc, "resample", 3))
    if "shortest_edge" in size and getattr(proc, "do_center_crop", False) and resample == 3:
        t = ClipTransform(
            image_size=int(size["shortest_edge"]),
            crop_size=int(crop.get("height", size["shortest_edge"])),
            mean=tuple(float(v) for v in proc.image_mean),
            std=tuple(float(v) for v in proc.image_std),
        )
        return t.batch, t.preprocess_id

    from ipo_vlm.io.hashing import sha256_json

    def run(images: Sequence["Image.Image"]) -> np.ndarray:
        return np.asarray(proc(images=list(images), return_tensors="np")["pixel_values"], dtype=np.float32)

    return run, f"hf-{type(proc).__name__}-{sha256_json(proc.to_dict())[:12]}"


@takes_options(device=device, batch_size=positive_int, dtype=one_of(*_DTYPES), text_batch_size=positive_int, share_prefix=boolean)
def load_hf(
    name: str,
    device: str = "cpu",
    batch_size: int = 32,
    dtype: str = "float32",
    text_batch_size: int = 128,
    share_prefix: bool = True,
    **unused: Any,
) -> HFVisionLanguageModel:
    """Factory for ``hf:<repo-id-or-path>``.

    Options: device, batch_size (images), dtype, text_batch_size, share_prefix (encode a
    template's common prompt start once; exact, and on by default for CLIP)."""
    if unused:
        log.debug("hf backend ignores options %s", sorted(unused))
    if dtype not in _DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; known: {', '.join(_DTYPES)}")
    if batch_size < 1 or text_batch_size < 1:
        raise ConfigError("batch sizes must be >= 1")
    local_dir, ident = _locate(name)
    # a local directory never touches the network; a hub id comes from the HF cache when it is
    # there, and is downloaded only when the hub answers (else one line at once, not retries)
    local_only = local_dir is not None or hub_local_only(ident, _how_to_get(ident))
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        raise BackendError(f"the hf VLM backend needs torch and transformers ({e.name} is missing): pip install 'ipo-vlm[clip]'") from None
    device = _resolve_device(device)
    try:
        model = AutoModel.from_pretrained(ident, local_files_only=local_only, dtype=getattr(torch, dtype))
        tokenizer = AutoTokenizer.from_pretrained(ident, local_files_only=local_only)
        preprocess, preprocess_id = _transform_from_processor(ident, local_only)
    except OSError as e:
        if local_dir is None:
            raise BackendError(_missing_model_message(ident)) from None
        raise BackendError(f"cannot load VLM from {local_dir}: {str(e).splitlines()[0]}") from None
    directory = local_dir or _snapshot_dir(ident)
    if not hasattr(model, "get_text_features") or not hasattr(model, "get_image_features"):
        raise BackendError(f"{name} is a {type(model).__name__}, not a dual image/text encoder like CLIP")
    model = model.to(device).eval()
    label = name if local_dir is None else local_dir.resolve().name
    model_id = f"hf:{label}@{weights_fingerprint(directory)}" + ("" if dtype == "float32" else f":{dtype}")
    log.info("loaded %s on %s", model_id, device)
    vlm = HFVisionLanguageModel(
        model, tokenizer, preprocess, model_id=model_id, preprocess_id=preprocess_id,
        device=device, batch_size=batch_size, text_batch_size=text_batch_size,
    )
    vlm.share_prefix = vlm.share_prefix and share_prefix
    return vlm
