"""A CLIP checkpoint with CLIP's real tokenizer and real shapes, built offline.

The open_clip wheel ships CLIP's byte-pair vocabulary (``bpe_simple_vocab_16e6.txt.gz``) and
ImageNet's 1000 class names (``zero_shot_metadata.py``). From the vocabulary file this module
writes the ``vocab.json`` and ``merges.txt`` that transformers' ``CLIPTokenizer`` reads, so
prompts tokenise exactly as with a downloaded CLIP; the weights are random. ``arch`` picks the
shapes: ``tiny`` (two small layers, for tests), ``tiny-512`` (the same with ViT-B/16's
512-wide embeddings) or ``vit-b-16`` (CLIP ViT-B/16, 149.6 M parameters, for benchmarks). The result loads with ``--vlm hf:PATH``.

The wheel is only read as data: importing ``open_clip`` imports torchvision, which does not
work beside the CPU torch build, so install it with ``pip install --no-deps open_clip_torch``.

As a script::

    python -m ipo_vlm.testing.real_clip OUT_DIR [--arch tiny|tiny-512|vit-b-16] [--seed N]
"""

from __future__ import annotations

import argparse
import ast
import gzip
import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.testing.tiny_clip import CLIP_LOGIT_SCALE_INIT, byte_level_vocab

#: merges in CLIP's vocabulary: 49408 tokens = 2 x 256 byte symbols + merges + 2 special tokens
CLIP_MERGES = 49152 - 256 - 2
CLIP_VOCAB_SIZE = 49408

#: tower shapes: (hidden, intermediate, layers, heads) per tower, image size, patch, projection
ARCHS: dict[str, dict[str, Any]] = {
    "tiny": {"text": (32, 64, 2, 2), "vision": (32, 64, 2, 2), "image_size": 32, "patch_size": 8, "projection_dim": 16},
    # tiny towers with ViT-B/16's 512-wide embeddings: cache and scoring costs at full width, cheaply
    "tiny-512": {"text": (32, 64, 2, 2), "vision": (32, 64, 2, 2), "image_size": 32, "patch_size": 8, "projection_dim": 512},
    "vit-b-16": {"text": (512, 2048, 12, 8), "vision": (768, 3072, 12, 12), "image_size": 224, "patch_size": 16,
                 "projection_dim": 512},
}


def open_clip_data_dir() -> Path:
    """The installed ``open_clip`` package folder, found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        if (Path(loc) / "bpe_simple_vocab_16e6.txt.gz").is_file():
            return Path(loc)
    raise ConfigError("CLIP's vocabulary needs the open_clip wheel: pip install --no-deps open_clip_torch")


@lru_cache(maxsize=1)
def clip_bpe() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """CLIP's vocabulary (token -> id) and its merges, in rank order, read from the wheel."""
    with gzip.open(open_clip_data_dir() / "bpe_simple_vocab_16e6.txt.gz", "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    # line 0 is a version header; the next CLIP_MERGES lines are the merges CLIP uses
    merges = tuple(tuple(line.split()) for line in lines[1 : 1 + CLIP_MERGES])
    symbols = [t for t in byte_level_vocab() if not t.startswith("<|")]
    tokens = symbols + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    if len(vocab) != CLIP_VOCAB_SIZE:
        raise ConfigError(f"unexpected CLIP vocabulary: {len(vocab)} tokens, not {CLIP_VOCAB_SIZE}")
    return vocab, merges  # type: ignore[return-value]


@lru_cache(maxsize=1)
def imagenet_classnames() -> tuple[str, ...]:
    """ImageNet's 1000 class names in CLIP's wording, parsed (not imported) from the wheel."""
    source = (open_clip_data_dir() / "zero_shot_metadata.py").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "IMAGENET_CLASSNAMES" for t in node.targets):
            names = ast.literal_eval(node.value)
            return tuple(str(n) for n in names)
    raise ConfigError("IMAGENET_CLASSNAMES not found in open_clip's zero_shot_metadata.py")


def write_tokenizer_files(directory: Path) -> tuple[Path, Path]:
    """``vocab.json`` and ``merges.txt`` (with its ``#version`` line), as CLIP checkpoints hold."""
    vocab, merges = clip_bpe()
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file = directory / "vocab.json", directory / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return vocab_file, merges_file


def clip_config(arch: str = "tiny") -> Any:
    """A ``CLIPConfig`` of the named shapes with CLIP's vocabulary and 77-token context."""
    from transformers import CLIPConfig

    if arch not in ARCHS:
        raise ConfigError(f"unknown CLIP arch {arch!r}; known: {', '.join(ARCHS)}")
    a = ARCHS[arch]
    vocab, _ = clip_bpe()

    def tower(shape: tuple[int, int, int, int]) -> dict[str, int]:
        hidden, inter, layers, heads = shape
        return {"hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads}

    text = {**tower(a["text"]), "vocab_size": len(vocab), "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"]}
    vision = {**tower(a["vision"]), "image_size": a["image_size"], "patch_size": a["patch_size"]}
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=a["projection_dim"],
                      logit_scale_init_value=CLIP_LOGIT_SCALE_INIT)


def build_real_clip(path: str | Path, arch: str = "tiny", seed: int = 0) -> Path:
    """Write a CLIP checkpoint (random weights of ``arch``'s shapes, CLIP's real tokenizer, CLIP's
    image processor) to ``path`` and return it; the same ``seed`` gives the same weights."""
    import torch
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPProcessor, CLIPTokenizer

    config = clip_config(arch)
    path = Path(path)
    write_tokenizer_files(path)
    vocab, merges = clip_bpe()
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=77)
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    size = ARCHS[arch]["image_size"]
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    model.save_pretrained(path)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ipo_vlm.testing.real_clip", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="directory to write (load it with --vlm hf:OUT)")
    p.add_argument("--arch", choices=sorted(ARCHS), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(build_real_clip(args.out, args.arch, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
