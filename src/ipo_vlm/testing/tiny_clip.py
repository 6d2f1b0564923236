"""A tiny but real ``CLIPModel`` on disk, for tests that must run the true ``hf:`` path.

The weights are random; everything else is what a downloaded CLIP checkpoint holds: a
``config.json``, ``model.safetensors``, a CLIP tokenizer and a CLIP image processor, all loadable
with ``from_pretrained(local_files_only=True)``. The tokenizer uses a byte-level character
vocabulary with no merges, so it is built offline and still tokenises any text (each character
becomes one token, which makes token counts easy to reason about in tests).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: CLIP's default logit scale (exp(ln 100) = 100), so tiny-model scores are not flat.
CLIP_LOGIT_SCALE_INIT = math.log(100.0)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from the 256 byte values to printable unicode symbols."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def byte_level_vocab() -> dict[str, int]:
    """256 byte symbols, the same with ``</w>`` (end of word), then the two special tokens."""
    symbols = list(_bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(tokens)}


def _tiny_config(
    config_cls: type,
    vocab: dict[str, int],
    image_size: int,
    patch_size: int,
    hidden_size: int,
    projection_dim: int,
    max_positions: int,
) -> Any:
    """Two layers per tower, two heads; pad = end token, as in CLIP checkpoints."""
    text_cfg = {
        "vocab_size": len(vocab),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": max_positions,
        "bos_token_id": vocab["<|startoftext|>"],
        "eos_token_id": vocab["<|endoftext|>"],
        "pad_token_id": vocab["<|endoftext|>"],
    }
    vision_cfg = {
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": image_size,
        "patch_size": patch_size,
    }
    return config_cls(
        text_config=text_cfg,
        vision_config=vision_cfg,
        projection_dim=projection_dim,
        logit_scale_init_value=CLIP_LOGIT_SCALE_INIT,
    )


def build_tiny_clip(
    path: str | Path,
    seed: int = 0,
    image_size: int = 32,
    patch_size: int = 8,
    hidden_size: int = 32,
    projection_dim: int = 16,
    max_position_embeddings: int = 77,
) -> Path:
    """Write a randomly initialised tiny CLIP checkpoint (model, tokenizer, processor) to ``path``.

    Returns ``path``. The same ``seed`` gives the same weights. The text context is CLIP's 77
    tokens by default so that the token-limit checks behave as with the real model.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessorPil,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = byte_level_vocab()
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_position_embeddings)
    config = _tiny_config(CLIPConfig, vocab, image_size, patch_size, hidden_size, projection_dim, max_position_embeddings)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
