"""``?options`` on every backend spec, parsed and validated once by the shared registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipo_vlm.captioner import create_captioner
from ipo_vlm.errors import ConfigError
from ipo_vlm.llm import create_llm
from ipo_vlm.registry import Registry, split_spec, takes_options
from ipo_vlm.vlm import create_vlm


def test_split_spec_keeps_options_off_the_scheme() -> None:
    assert split_spec("local?n_ctx=512") == ("local", "?n_ctx=512")
    assert split_spec("hf:/m/clip?device=cpu") == ("hf", "/m/clip?device=cpu")
    assert split_spec("none") == ("none", "")


@pytest.mark.parametrize(
    "create, spec, message",
    [
        (create_llm, "local?n_ctx=-5", r"bad value for local LLM option 'n_ctx': '-5' \(expected an integer >= 256\)"),
        (create_llm, "local?gpu=1", r"unknown local LLM option 'gpu'; known: grammar_first, n_ctx, n_threads, reuse_prefix, seed"),
        (create_llm, "llamacpp:/m.gguf?reuse_prefix=maybe", r"'reuse_prefix': 'maybe' \(expected true or false\)"),
        (create_llm, "openai:gpt-4o-mini?concurrency=0", r"openai LLM option 'concurrency': '0' \(expected an integer >= 1\)"),
        (create_llm, "scripted:/x.json?delay_s=soon", r"scripted LLM option 'delay_s'"),
        (create_llm, "local?n_ctx", r"bad local LLM options 'n_ctx': expected name=value pairs"),
        (create_vlm, "demo:fashion?bogus=1", r"unknown demo VLM option 'bogus'"),
        (create_vlm, "hf:/no/clip?device=gpu9", r"hf VLM option 'device': 'gpu9' \(expected cpu, cuda, cuda:N, mps or auto\)"),
        (create_vlm, "hf:/no/clip?dtype=int3", r"hf VLM option 'dtype'"),
        (create_captioner, "none?x=1", r"unknown none captioner option 'x'; known: none"),
        (create_captioner, "interrogate?max_attributes=0", r"interrogate captioner option 'max_attributes'"),
        (create_captioner, "hf:/no/cap?max_new_tokens=-1", r"hf captioner option 'max_new_tokens'"),
    ],
)
def test_bad_options_are_one_line_config_errors_before_loading(create, spec, message) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        create(spec)
    assert "\n" not in str(e.value)


def test_options_reach_the_backend_and_the_path_stays_clean(tmp_path: Path) -> None:
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip")
    vlm = create_vlm(f"hf:{clip}?device=cpu&batch_size=3")
    assert vlm.batch_size == 3 and vlm.device == "cpu"
    script = tmp_path / "s.json"
    script.write_text(json.dumps(["1. a photo of a <CLASS>."]))
    assert create_llm(f"scripted:{script}?delay_s=0.25").delay_s == 0.25
    with pytest.raises(ConfigError, match="'device': 'tpu'"):  # a flag (--device) is checked like the spec
        create_vlm(f"hf:{clip}", device="tpu")


def test_a_factory_without_declared_options_gets_the_query_unchanged() -> None:
    reg: Registry[tuple] = Registry("thing")
    reg.register("plain", lambda name, **kw: (name, kw))
    reg.register("typed", takes_options(n=int)(lambda name, **kw: (name, kw)))
    assert reg.create("plain:x?a=1") == ("x?a=1", {})
    assert reg.create("typed:x?n=4", extra="kept") == ("x", {"n": 4, "extra": "kept"})
