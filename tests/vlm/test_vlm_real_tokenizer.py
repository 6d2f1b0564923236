"""CLIP's real BPE tokenizer (from the open_clip wheel's vocabulary) through the hf: backend:
token ids, the 77-token limit, padding and prefix sharing on multi-token class names, and long
templates rejected with the class that overflows named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipo_vlm.engine.scoring import Scorer
from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import fill
from ipo_vlm.testing.real_clip import CLIP_VOCAB_SIZE, imagenet_classnames, main
from ipo_vlm.vlm import create_vlm

# CLIP's own ids for this sentence (start, a, photo, of, a, golden, retriever, ., end)
GOLDEN = [49406, 320, 1125, 539, 320, 3878, 28394, 269, 49407]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("real") / "clip"
    assert main([str(out), "--arch", "tiny", "--seed", "1"]) == 0  # the script entry point
    return out


@pytest.fixture(scope="module")
def vlm(clip_dir: Path):
    return create_vlm(f"hf:{clip_dir}")


def test_checkpoint_holds_clip_vocabulary_files(clip_dir: Path) -> None:
    vocab = json.loads((clip_dir / "vocab.json").read_text(encoding="utf-8"))
    merges = (clip_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == CLIP_VOCAB_SIZE
    assert merges[0].startswith("#version")
    assert len(merges) - 1 == CLIP_VOCAB_SIZE - 2 * 256 - 2
    assert vocab["<|startoftext|>"] == GOLDEN[0] and vocab["<|endoftext|>"] == GOLDEN[-1]
    assert vocab["golden</w>"] == GOLDEN[5]


def test_tokenizes_exactly_as_clip(vlm) -> None:
    assert vlm.tokenizer("a photo of a golden retriever.")["input_ids"] == GOLDEN
    # CLIP lowercases and collapses whitespace before splitting
    assert vlm.tokenizer("A  Photo of a\tGolden Retriever.")["input_ids"] == GOLDEN
    assert vlm.count_tokens(["a photo of a golden retriever."]) == [len(GOLDEN)]


def test_imagenet_class_names_come_from_the_wheel() -> None:
    names = imagenet_classnames()
    assert len(names) == 1000
    assert len(set(names)) == 998  # CLIP's wording keeps "missile" and "sunglasses" twice, as ImageNet does
    assert names[0] == "tench" and "Golden Retriever" in names


def _prompt_of(vlm, n_tokens: int) -> str:
    """A prompt of exactly ``n_tokens`` tokens (start and end included): "a" is one token."""
    text = " ".join(["a"] * (n_tokens - 2))
    assert vlm.count_tokens([text]) == [n_tokens]
    return text


def test_77_token_limit_is_exact(vlm) -> None:
    assert vlm.max_text_tokens == 77
    assert vlm.encode_texts([_prompt_of(vlm, 77)]).shape == (1, vlm.dim)
    with pytest.raises(ConfigError, match="78 tokens, over the 77-token limit"):
        vlm.encode_texts([_prompt_of(vlm, 78)])


def test_padding_and_prefix_sharing_agree_on_bpe_class_names(vlm) -> None:
    names = list(imagenet_classnames()[:40])  # one to six BPE tokens each
    counts = vlm.count_tokens(names)
    assert min(counts) < max(counts)
    texts = [fill(t, c) for t in ("a photo of a {}.", "a blurry close-up photo of the {}, a kind of animal.") for c in names]
    shared = vlm.encode_texts(texts)
    longest = vlm.encode_texts(texts, pad_to="longest")
    full = vlm.encode_texts(texts, pad_to="max_length")
    np.testing.assert_allclose(shared, full, atol=2e-5)
    np.testing.assert_allclose(longest, full, atol=2e-5)
    # a prompt encoded alone equals the same prompt padded beside longer ones
    alone = vlm.encode_texts([texts[0]], pad_to="longest")
    np.testing.assert_allclose(alone[0], full[0], atol=2e-5)


def test_long_template_is_rejected_naming_the_class_that_overflows(vlm) -> None:
    names = ["tench", "goldfish", "Staffordshire Bull Terrier", "tiger"]
    longest = max(names, key=lambda c: vlm.count_tokens([c])[0])
    assert longest == "Staffordshire Bull Terrier"
    # fits the shortest names, not the longest one
    room = 77 - vlm.count_tokens([fill("{} .", "tench")])[0]
    template = " ".join(["a"] * room) + " {}."
    assert vlm.count_tokens([fill(template, "tench")])[0] <= 77
    scorer = Scorer(vlm, cache_root=False)
    problem = scorer.check(template, names)
    assert problem is not None and repr(longest) in problem and "77-token limit" in problem
    feats = np.eye(len(names), vlm.dim, dtype=np.float32)
    with pytest.raises(ConfigError, match="Staffordshire Bull Terrier"):
        scorer.score([template], names, feats, np.arange(len(names)))
    assert scorer.check("a photo of a {}.", names) is None


TRICKY = ["a photo of a {}.", "{}", "a {}s in the wild", "the {}'s shadow", "'{}'", "a.{}.", "x{}y", "{}-like object",
          "3{}4", "a photo of a {}, a type of café.", "{}<|endoftext|>", "{} {}", "  spaced   {}   out  ", "({})"]


def test_filled_counts_by_parts_equal_tokenising_every_prompt(vlm) -> None:
    names = [*imagenet_classnames(), "T-shirt", "Jack-o'-lantern", "crème brûlée", "R2-D2", "'quoted'", "a.b.", "x"]
    for template in TRICKY:
        full = vlm.count_tokens([fill(template, c) for c in names])
        assert vlm.count_filled_tokens(template, names) == full, template


def test_filled_counts_tokenise_each_class_name_once(vlm) -> None:
    from ipo_vlm.vlm.clip_tokens import FilledTokenCounter

    seen: list[str] = []

    def count(texts: list[str]) -> list[int]:
        seen.extend(texts)
        return vlm.count_tokens(texts)

    counter = FilledTokenCounter(count)
    names = list(imagenet_classnames()[:200])
    assert counter.counts("a photo of a {}.", names) == vlm.count_tokens([fill("a photo of a {}.", c) for c in names])
    first = len(seen)
    assert first <= len(set(names)) + 2
    counter.counts("a blurry close-up photo of the {}, seen from above.", names)
    # only the template's two sides are new, and the one prompt whose class name ends in a
    # symbol that meets the template's "," (it could join one word): "kite (bird of prey)"
    assert seen[first:] == ["a blurry close-up photo of the ", ", seen from above.", "a blurry close-up photo of the kite (bird of prey), seen from above."]
