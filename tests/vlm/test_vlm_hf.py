"""The hf: backend on a tiny random CLIP saved to disk: real loading, tokenising and encoding."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.testing.tiny_clip import build_tiny_clip
from ipo_vlm.vlm import create_vlm


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny") / "clip", seed=0)


@pytest.fixture(scope="module")
def vlm(tiny_dir: Path):
    return create_vlm(f"hf:{tiny_dir}")


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(7)
    return [Image.fromarray(rng.integers(0, 256, (30 + 5 * i, 40, 3), dtype=np.uint8)) for i in range(n)]


def test_protocol_attributes(vlm) -> None:
    from ipo_vlm.vlm.base import VisionLanguageModel

    assert isinstance(vlm, VisionLanguageModel)
    assert vlm.max_text_tokens == 77
    assert vlm.logit_scale == pytest.approx(100.0, rel=1e-5)
    assert vlm.model_id.startswith("hf:clip@")
    assert vlm.preprocess_id.startswith("clip32c32-")


def test_image_features_match_model_forward(vlm) -> None:
    import torch

    images = _images(5)
    vlm.batch_size = 2  # exercise more than one batch
    feats = vlm.encode_images(images)
    assert feats.shape == (5, 16) and feats.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    from transformers import CLIPImageProcessorPil

    pixels = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})(
        images=images, return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        ref = vlm.model(pixel_values=pixels, input_ids=torch.tensor([[512, 513]])).image_embeds.numpy()
    assert np.abs(feats - ref).max() < 1e-5


def test_text_features_longest_padding_is_exact(vlm) -> None:
    texts = ["a photo of a cat.", "dog", "a blurry photo of a small bird on a branch", "x" * 60, "a {} b"]
    vlm.text_batch_size = 2
    longest = vlm.encode_texts(texts)
    full = vlm.encode_texts(texts, pad_to="max_length")
    one_by_one = np.concatenate([vlm.encode_texts([t]) for t in texts])
    assert longest.shape == (5, 16)
    assert np.abs(longest - full).max() < 1e-5
    assert np.abs(longest - one_by_one).max() < 1e-5
    # different texts really give different embeddings (the comparison above is not vacuous)
    assert np.abs(longest[0] - longest[1]).max() > 1e-3


def test_count_tokens_and_limit(vlm) -> None:
    # byte-level vocabulary: one token per character, plus start and end
    assert vlm.count_tokens(["dog", "a cat"]) == [5, 6]
    ok = "x" * 75
    assert vlm.count_tokens([ok]) == [77]
    vlm.encode_texts([ok])
    with pytest.raises(ConfigError, match="77-token limit"):
        vlm.encode_texts(["dog", ok + "x"])


def test_same_weights_same_id_other_seed_other_id(tiny_dir: Path, tmp_path: Path, vlm) -> None:
    again = create_vlm(f"hf:{tiny_dir}")
    assert again.model_id == vlm.model_id
    other = create_vlm(f"hf:{build_tiny_clip(tmp_path / 'clip', seed=1)}")
    assert other.model_id != vlm.model_id
    rebuilt = create_vlm(f"hf:{build_tiny_clip(tmp_path / 'again' / 'clip', seed=0)}")
    assert rebuilt.model_id == vlm.model_id  # same seed, same bytes, same id (and caches)
    assert other.preprocess_id == vlm.preprocess_id


def test_missing_hub_model_offline_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(BackendError) as err:
        create_vlm("hf:openai/clip-vit-base-patch16")
    msg = str(err.value)
    assert "huggingface-cli download openai/clip-vit-base-patch16" in msg and "hf:/path" in msg


def test_bad_paths_and_options(tmp_path: Path, tiny_dir: Path) -> None:
    with pytest.raises(BackendError, match="no model directory"):
        create_vlm(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(BackendError, match="config.json"):
        create_vlm(f"hf:{tmp_path}")
    with pytest.raises(ConfigError):
        create_vlm("hf:")
    with pytest.raises(ConfigError, match="dtype"):
        create_vlm(f"hf:{tiny_dir}", dtype="int3")
    assert not create_vlm(f"hf:{tiny_dir}", share_prefix=False).share_prefix


def test_open_clip_without_the_extra_names_it_and_with_it_rejects_an_unknown_model() -> None:
    try:
        import open_clip  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match=r"pip install 'ipo-vlm\[openclip\]'"):
            create_vlm("open_clip:ViT-B-16@openai")
    else:  # the extra is installed: the real loading path runs and fails on a bad name
        with pytest.raises(BackendError, match="no-such-arch"):
            create_vlm("open_clip:no-such-arch@openai")


def test_import_and_help_stay_light() -> None:
    code = (
        "import sys, ipo_vlm, ipo_vlm.vlm, ipo_vlm.engine.features, ipo_vlm.engine.scoring, ipo_vlm.vlm.hf, ipo_vlm.cli.features\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'llama_cpp') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_prefix_groups_share_template_starts() -> None:
    from ipo_vlm.vlm.clip_prefix import prefix_groups

    sot, eot = 0, 9
    ids = [[sot, 1, 2, 3, c, eot] for c in (4, 5, 6, 7, 8)]  # one template, five classes
    ids += [[sot, 1, 2, 3, c, 5, eot] for c in (4, 5, 6, 7)]  # same start, longer ending
    ids += [[sot, 7, eot], [sot, 8, 8, eot]]  # unrelated short prompts
    groups, rest = prefix_groups(ids, max_batch=128)
    assert groups == [(4, sorted(range(9), key=lambda i: ids[i]))]
    assert sorted(rest) == [9, 10]
    # the batch limit splits a group; every prompt keeps its end token outside the prefix
    groups, rest = prefix_groups([[sot, 1, 2, 3, eot]] * 6, max_batch=4)
    assert [len(g) for _, g in groups] == [4] and all(p <= 4 for p, _ in groups) and len(rest) == 2


def test_shared_prefix_encoding_is_exact(vlm) -> None:
    from ipo_vlm.vlm.clip_prefix import prefix_groups

    classes = ["cat", "dog", "tabby cat", "great horned owl", "x", "red fox"]
    templates = ["a photo of a {}.", "a photo of a {}, a type of pet.", "{} in the wild", "itap of my {}"]
    texts = [t.replace("{}", c) for t in templates for c in classes] + ["hello", "a photo of"]
    vlm.text_batch_size = 128
    groups, _ = prefix_groups(vlm._token_ids(texts), 128)
    assert len(groups) >= 2  # the shared path really runs
    shared = vlm.encode_texts(texts)
    full = vlm.encode_texts(texts, pad_to="max_length")
    assert np.abs(shared - full).max() < 1e-5
    assert np.abs(shared[0] - shared[1]).max() > 1e-3


def test_siglip_style_model_pads_to_full_context(tmp_path: Path) -> None:
    """A non-causal text tower (SigLIP) through the Auto classes: its own image processor,
    every prompt padded to the full context, as the model was trained."""
    import torch
    from transformers import CLIPTokenizer, SiglipConfig, SiglipImageProcessorPil, SiglipModel

    from ipo_vlm.testing.tiny_clip import byte_level_vocab

    vocab = byte_level_vocab()
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = SiglipConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=16, pad_token_id=513, **small),
        vision_config=dict(image_size=32, patch_size=8, **small),
    )
    torch.manual_seed(0)
    SiglipModel(config).save_pretrained(tmp_path)
    CLIPTokenizer(vocab=vocab, merges=[], model_max_length=16).save_pretrained(tmp_path)
    SiglipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    vlm = create_vlm(f"hf:{tmp_path}")
    assert vlm.max_text_tokens == 16 and not vlm.share_prefix
    assert vlm.preprocess_id.startswith("hf-SiglipImageProcessorPil-")
    images = _images(2)
    feats = vlm.encode_images(images)
    assert feats.shape == (2, 32)
    texts = ["a cat", "dog", "a photo of x"]
    ids = vlm.tokenizer(texts, padding="max_length", max_length=16, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = vlm.model.get_text_features(input_ids=ids).pooler_output
    ref = (ref / ref.norm(dim=-1, keepdim=True)).numpy()
    assert np.abs(vlm.encode_texts(texts) - ref).max() < 1e-5
    with pytest.raises(ConfigError, match="16-token limit"):
        vlm.encode_texts(["x" * 15])
