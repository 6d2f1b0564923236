"""Check a string against a GBNF grammar with llama.cpp's own grammar engine (no generation):
the grammar sampler is built from the model's vocabulary, and each token of the string must keep
its logit; at the end, end-of-sequence must be allowed (the grammar is complete)."""

from __future__ import annotations

import ctypes
import math
from typing import Any


def grammar_accepts(llama: Any, grammar: str, text: str) -> bool:
    """True when llama.cpp's grammar sampler lets ``llama`` write exactly ``text``.

    Raises ``ValueError`` when llama.cpp cannot parse the grammar."""
    import llama_cpp

    vocab = llama._model.vocab
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
    if not sampler:
        raise ValueError("llama.cpp could not parse the grammar")
    try:
        tokens = llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        eos = llama_cpp.llama_vocab_eos(vocab)
        for token in [*tokens, eos]:
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            array = llama_cpp.llama_token_data_array(
                data=ctypes.cast(data, llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False
            )
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
            if math.isinf(data[0].logit):
                return False
            if token != eos:
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)
