"""hf captioner: the real transformers loading and generation path on a tiny random BLIP."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from ipo_vlm.captioner import create_captioner
from ipo_vlm.errors import BackendError, ConfigError

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "red", "photo", "of", "shirt", "dog"]


def build_tiny_blip(path: Path) -> Path:
    """A randomly initialised BLIP captioner with a 12-word vocabulary, saved like a real one."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizer(str(path / "vocab.txt"), bos_token="[DEC]")
    processor = BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}), tokenizer=tokenizer)
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config = BlipConfig(
        text_config=dict(vocab_size=len(WORDS), encoder_hidden_size=32, bos_token_id=5, pad_token_id=0,
                         sep_token_id=3, eos_token_id=3, **small),
        vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=16)
    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    pytest.importorskip("transformers")
    return build_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip")


def test_tiny_blip_generates_deterministic_captions(tiny_blip):
    cap = create_captioner(f"hf:{tiny_blip}", vlm=object(), max_new_tokens=6, batch_size=2)
    images = [Image.new("RGB", (40, 30), (200, 0, 0)), Image.new("L", (20, 20), 9), Image.new("RGB", (8, 8))]
    texts = cap.describe(images, "Describe the object.")
    assert len(texts) == 3
    assert texts == cap.describe(images, "Describe the object.")
    for text in texts:
        assert text and set(text.split()) <= set(WORDS[6:])
    assert cap.model_id.startswith("hf:tiny-blip@") and "max_new_tokens=6" in cap.model_id
    assert cap.chat is False


def test_missing_hub_model_says_how_to_get_it():
    with pytest.raises(BackendError, match="huggingface-cli download someone/no-such-captioner"):
        create_captioner("hf:someone/no-such-captioner")


def test_missing_or_invalid_directories(tmp_path):
    with pytest.raises(BackendError, match="no captioner model directory"):
        create_captioner(f"hf:{tmp_path / 'nope'}")
    with pytest.raises(BackendError, match="has no config.json"):
        create_captioner(f"hf:{tmp_path}")
    with pytest.raises(ConfigError, match="needs a model"):
        create_captioner("hf")


class _Batch(dict):
    def to(self, device):
        return self


class _ChatProcessor:
    """Stands in for a vision chat model's processor: prompt ids are [7, 7, 7]."""

    chat_template = "{{ messages }}"

    def __init__(self):
        self.prompts = []

    def apply_chat_template(self, messages, add_generation_prompt):
        assert add_generation_prompt and messages[0]["content"][0] == {"type": "image"}
        return "PROMPT:" + messages[0]["content"][1]["text"]

    def __call__(self, images, text, return_tensors):
        import torch

        self.prompts += text
        return _Batch(input_ids=torch.full((len(images), 3), 7), pixel_values=torch.zeros(len(images), 3, 4, 4))

    def batch_decode(self, ids, skip_special_tokens):
        return [" ".join(str(int(i)) for i in row) + " " for row in ids]


class _EchoModel:
    """Decoder-only behaviour: returns the prompt followed by two new tokens."""

    device = "cpu"

    def generate(self, input_ids, pixel_values, max_new_tokens, do_sample):
        import torch

        assert do_sample is False
        return torch.cat([input_ids, torch.tensor([[1, 2]] * len(input_ids))], dim=1)


def test_chat_models_get_the_instruction_one_image_at_a_time_and_lose_the_prompt_echo():
    pytest.importorskip("torch")
    from ipo_vlm.captioner.hf import HFCaptioner

    processor = _ChatProcessor()
    cap = HFCaptioner(_EchoModel(), processor, "hf:fake", batch_size=8)
    assert cap.chat and cap.batch_size == 1
    texts = cap.describe([Image.new("RGB", (4, 4)), Image.new("L", (4, 4))], "Describe the pet.")
    assert texts == ["1 2", "1 2"]
    assert processor.prompts == ["PROMPT:Describe the pet."] * 2
