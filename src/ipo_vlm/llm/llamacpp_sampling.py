"""Grammar-constrained sampling that checks one token instead of the whole vocabulary.

llama-cpp-python puts the grammar at the head of its sampler chain, so every generated token
first runs all ~150k vocabulary entries through the grammar engine; on two CPU cores that costs
as much as the model's own forward pass. Most tokens a model writes are allowed anyway, so
:class:`CheckFirstSampler` samples from the unconstrained chain, asks the grammar about that one
token, and only when it is refused applies the grammar to the whole vocabulary and samples again.
This is what llama.cpp's own sampler does unless told ``grammar_first``. Every emitted token is
allowed by the grammar either way; the distribution differs only in how a refused draw is
replaced.

:func:`check_first_llama` builds a ``Llama`` whose grammar requests use it; requests without a
grammar keep llama-cpp-python's own sampler."""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np


class CheckFirstSampler:
    """One generation's sampler: the unconstrained chain, then a one-token grammar check.

    ``chain`` is a ``llama_cpp._internals.LlamaSampler`` with the request's penalties,
    truncation, temperature and draw (no grammar); ``grammar`` the request's ``LlamaGrammar``."""

    def __init__(self, llama: Any, chain: Any, grammar: Any) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._chain = chain
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._grammar:
            raise ValueError("llama.cpp could not parse the grammar")
        self._n_vocab = int(llama._n_vocab)
        # One buffer for the whole vocabulary, filled from the logits at each draw.
        self._data = (llama_cpp.llama_token_data * self._n_vocab)()
        fields = np.dtype({"names": ["id", "logit", "p"], "formats": [np.int32, np.float32, np.float32],
                           "offsets": [0, 4, 8], "itemsize": ctypes.sizeof(llama_cpp.llama_token_data)})
        self._view = np.frombuffer(self._data, dtype=fields)
        self._ids = np.arange(self._n_vocab, dtype=np.int32)
        self._one = (llama_cpp.llama_token_data * 1)()
        #: draws the grammar refused, redrawn under it (for the bench and the tests)
        self.redraws = 0
        self.draws = 0

    def _array(self, data: Any, size: int) -> Any:
        lib = self._lib
        return lib.llama_token_data_array(data=ctypes.cast(data, lib.llama_token_data_p), size=size,
                                          selected=-1, sorted=False)

    def _draw(self, logits: np.ndarray, with_grammar: bool) -> int:
        lib = self._lib
        self._view["id"] = self._ids
        self._view["logit"] = logits
        self._view["p"] = 0.0
        array = self._array(self._data, self._n_vocab)
        if with_grammar:
            lib.llama_sampler_apply(self._grammar, ctypes.byref(array))
        lib.llama_sampler_apply(self._chain.sampler, ctypes.byref(array))
        return int(array.data[array.selected].id)

    def _allowed(self, token: int) -> bool:
        lib = self._lib
        self._one[0] = lib.llama_token_data(token, 0.0, 0.0)
        lib.llama_sampler_apply(self._grammar, ctypes.byref(self._array(self._one, 1)))
        return not math.isinf(self._one[0].logit)

    def sample(self, ctx: Any, idx: int = -1) -> int:
        """Draw the next token for position ``idx`` of ``ctx`` (a ``LlamaContext``) and accept it."""
        lib = self._lib
        pointer = lib.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        self.draws += 1
        token = self._draw(logits, with_grammar=False)
        if not self._allowed(token):
            self.redraws += 1
            token = self._draw(logits, with_grammar=True)
        lib.llama_sampler_accept(self._grammar, token)
        self._chain.accept(token)
        return token

    def close(self) -> None:
        if self._grammar:
            self._lib.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


def check_first_llama(**kwargs: Any) -> Any:
    """A ``llama_cpp.Llama`` (same arguments) whose grammar requests sample check-first."""
    import llama_cpp

    class CheckFirstLlama(llama_cpp.Llama):
        last_sampler: CheckFirstSampler | None = None

        def _init_sampler(self, *args: Any, grammar: Any = None, **options: Any) -> Any:
            chain = super()._init_sampler(*args, grammar=None, **options)
            if grammar is None:
                return chain
            self.last_sampler = CheckFirstSampler(self, chain, grammar)
            return self.last_sampler

    return CheckFirstLlama(**kwargs)
