"""``hf:<repo-or-path>``: a local transformers captioner (BLIP, GIT) or vision chat model.

Loaded with ``AutoProcessor`` + ``AutoModelForImageTextToText`` (transformers 5 folds the old
Vision2Seq class into it) from a local directory or the Hugging Face cache. A processor with a
chat template is treated as a vision chat model and gets the instruction with each image; a plain
captioner (no chat template) cannot take instructions and writes its usual caption. Decoding is
greedy, so the same model and image give the same text."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.registry import device, positive_int, takes_options
from ipo_vlm.vlm.hub import hub_local_only, hub_offline

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)


def _how_to_get(name: str) -> str:
    return (f"fetch the weights once where there is internet (`huggingface-cli download {name}`) and copy"
            " the Hugging Face cache here, or pass a local directory: --captioner hf:/path/to/model")


def _missing(name: str) -> str:
    return (f"captioner weights {name!r} not found locally"
            + (" (HF_HUB_OFFLINE is set)" if hub_offline() else " and not downloadable")
            + f"; {_how_to_get(name)}")


def _locate(name: str) -> tuple[Path | None, str]:
    """(local directory or None, the identifier for ``from_pretrained``)."""
    if not name:
        raise ConfigError("hf captioner needs a model, e.g. hf:Salesforce/blip-image-captioning-base or hf:/path")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise BackendError(f"{path} has no config.json; it is not a transformers model directory")
        return path, str(path)
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:
        raise BackendError(f"no captioner model directory at {path}")
    return None, name


class HFCaptioner:
    """Greedy generation with a transformers image-text-to-text model."""

    def __init__(self, model: Any, processor: Any, model_id: str, max_new_tokens: int = 60, batch_size: int = 8) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.max_new_tokens = max_new_tokens
        # Chat models get one image per call: batching them needs left padding that not every
        # processor sets up, and a wrong pad side silently corrupts the output.
        self.chat = bool(getattr(processor, "chat_template", None))
        self.batch_size = 1 if self.chat else batch_size

    def _inputs(self, images: list["Image.Image"], instruction: str) -> Any:
        rgb = [im.convert("RGB") for im in images]
        if not self.chat:
            return self.processor(images=rgb, return_tensors="pt")
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        return self.processor(images=rgb, text=[prompt] * len(rgb), return_tensors="pt")

    def describe(self, images: Sequence["Image.Image"], instruction: str) -> list[str]:
        """One caption per image; the instruction is used only by chat models."""
        import torch

        texts: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = list(images[start : start + self.batch_size])
            inputs = self._inputs(batch, instruction).to(self.model.device)
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            prompt_ids = inputs.get("input_ids")
            # Decoder-only models echo the prompt; keep only the new tokens.
            if prompt_ids is not None and out.shape[1] > prompt_ids.shape[1] and bool((out[:, : prompt_ids.shape[1]] == prompt_ids).all()):
                out = out[:, prompt_ids.shape[1] :]
            texts += [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]
        return texts


@takes_options(device=device, max_new_tokens=positive_int, batch_size=positive_int)
def load_hf_captioner(name: str, *, device: str = "cpu", max_new_tokens: int = 60, batch_size: int = 8, **_: Any) -> HFCaptioner:
    """Factory for ``hf:<repo-id-or-path>``; unknown options (``vlm``, ...) are ignored.

    A local directory never touches the network; a hub id is read from the HF cache and
    downloaded only when the environment allows it."""
    if max_new_tokens < 1 or batch_size < 1:
        raise ConfigError("hf captioner: max_new_tokens and batch_size must be >= 1")
    local_dir, ident = _locate(name)
    local_only = local_dir is not None or hub_local_only(ident, _how_to_get(ident))
    try:
        from transformers import AutoModelForImageTextToText, AutoProcessor
    except ImportError as e:
        raise BackendError(f"the hf captioner needs torch and transformers ({e.name} is missing): pip install 'ipo-vlm[clip]'") from None
    try:
        processor = AutoProcessor.from_pretrained(ident, local_files_only=local_only)
        model = AutoModelForImageTextToText.from_pretrained(ident, local_files_only=local_only)
    except OSError as e:
        if local_dir is None:
            raise BackendError(_missing(ident)) from None
        raise BackendError(f"cannot load captioner from {local_dir}: {str(e).splitlines()[0]}") from None
    except ValueError as e:  # transformers' "Unrecognized configuration class ..." for non-captioners
        raise BackendError(f"{name} is not an image-to-text model: {str(e).splitlines()[0]}") from None
    model = model.to(device).eval()
    label = name if local_dir is None else local_dir.resolve().name
    fingerprint = _fingerprint(local_dir if local_dir is not None else _snapshot_dir(ident))
    model_id = f"hf:{label}{fingerprint};max_new_tokens={max_new_tokens}"
    log.info("loaded captioner %s (%s)", model_id, "chat" if getattr(processor, "chat_template", None) else "caption")
    return HFCaptioner(model, processor, model_id, max_new_tokens=max_new_tokens, batch_size=batch_size)


def _snapshot_dir(repo_id: str) -> Path | None:
    """The HF cache's snapshot directory of ``repo_id`` (None if it cannot be found)."""
    from transformers.utils import cached_file

    try:
        config = cached_file(repo_id, "config.json", local_files_only=True)
    except OSError:
        return None
    return Path(config).parent if config else None


def _fingerprint(directory: Path | None) -> str:
    """``@<hash>`` of a checkpoint's weights, so that other weights miss the description cache."""
    if directory is None:
        return ""
    from ipo_vlm.vlm.hf import weights_fingerprint

    return f"@{weights_fingerprint(directory)}"
