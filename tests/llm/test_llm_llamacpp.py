"""The llama.cpp backend's set-up, without loading a model (the slow test generates for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.llm import create_llm
from ipo_vlm.llm.llamacpp import LlamaCppLLM, _common_prefix, load_llamacpp


def test_spec_options_and_defaults(tmp_path: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    llm = load_llamacpp(f"{gguf}?n_ctx=8192&seed=7&reuse_prefix=false")
    assert (llm.n_ctx, llm.reuse_prefix, llm.model_id, llm.max_concurrency) == (8192, False, "llamacpp:m.gguf", 1)
    default = create_llm(f"llamacpp:{gguf}")
    assert default.n_ctx == 4096 and default.reuse_prefix is True and default.n_threads >= 1
    grammar_first = load_llamacpp(f"{gguf}?grammar_first=true")
    assert default.grammar_first is False and grammar_first.grammar_first is True
    # the two samplers answer differently: their answers are cached apart
    assert grammar_first.cache_id == grammar_first.model_id != default.cache_id
    with pytest.raises(ConfigError, match="unknown llamacpp option 'gpu'"):
        load_llamacpp(f"{gguf}?gpu=1")
    with pytest.raises(ConfigError, match="n_ctx"):
        LlamaCppLLM(gguf, n_ctx=10)


def test_missing_file_and_missing_path_are_clear_errors() -> None:
    with pytest.raises(BackendError, match="GGUF model file not found"):
        create_llm("llamacpp:/no/such/model.gguf")
    with pytest.raises(ConfigError, match="needs a path"):
        create_llm("llamacpp:")


def test_unloadable_file_is_a_backend_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf file at all")
    # Without llama-cpp-python the same call fails earlier, with the install hint.
    with pytest.raises(BackendError, match="cannot load GGUF model|llama-cpp-python is not installed"):
        LlamaCppLLM(bad).check()


def test_common_prefix() -> None:
    assert _common_prefix([1, 2, 3, 4], [1, 2, 9]) == 2
    assert _common_prefix([], [1]) == 0
    assert _common_prefix([5, 6], [5, 6, 7]) == 2
