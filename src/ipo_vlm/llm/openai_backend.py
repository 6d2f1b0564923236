"""``openai:<model>``: any OpenAI-compatible chat API through the official ``openai`` SDK.

The server comes from ``OPENAI_BASE_URL`` (vLLM, Ollama, llama.cpp server, LM Studio, gateways),
the key from ``OPENAI_API_KEY``. Options can ride on the spec as a query string, e.g.
``openai:qwen2.5?response_format=json_object&concurrency=8&timeout=30``. Retries are ours:
bounded, exponential, honouring ``Retry-After`` on 429, 5xx, timeouts and broken answers."""

from __future__ import annotations

import json
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ipo_vlm.registry import nonnegative_float, nonnegative_int, positive_float, positive_int, spec_options, takes_options, text
from ipo_vlm.errors import BackendError, ConfigError, LLMError
from ipo_vlm.llm.base import LLMRequest, LLMResponse
from ipo_vlm.llm.constraint import RESPONSE_FORMATS, response_format
from ipo_vlm.llm.openai_settings import DEFAULT_BASE_URL, OpenAISettings
from ipo_vlm.llm.retry import Retryable, RetryPolicy, parse_retry_after, with_retries
from ipo_vlm.llm.tokens import estimate_request_tokens, estimate_tokens

log = logging.getLogger(__name__)

_OPTION_TYPES: dict[str, Any] = {
    "response_format": text,
    "concurrency": positive_int,
    "timeout": positive_float,
    "max_retries": nonnegative_int,
    "base_delay": nonnegative_float,
    "max_delay": nonnegative_float,
}


class OpenAIChat:
    """Chat completions against an OpenAI-compatible server.

    ``response_format`` is the server's capability for constrained output: ``json_schema``
    (OpenAI structured outputs), ``json_object`` (JSON mode with the schema beside it, as the
    llama.cpp server takes it) or ``none``. The raw text is returned either way."""

    def __init__(
        self,
        model: str,
        settings: OpenAISettings | None = None,
        response_format: str = "json_schema",
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not model:
            raise ConfigError("the openai backend needs a model name, e.g. openai:gpt-4o-mini")
        if response_format not in RESPONSE_FORMATS:
            raise ConfigError(f"unknown response_format {response_format!r}; known: {', '.join(RESPONSE_FORMATS)}")
        if concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
        self.model = model
        self.settings = settings or OpenAISettings.from_env()
        self.response_format = response_format
        self.max_concurrency = concurrency
        self.retry = retry or RetryPolicy(max_retries=self.settings.max_retries)
        # Jitter only from a seeded generator, so that a run's waits can be replayed.
        self.rng = rng if rng is not None else random.Random(0)
        base = self.settings.public_base_url()
        self.model_id = f"openai:{model}" if base == DEFAULT_BASE_URL else f"openai:{model}@{base}"
        self._client: Any = None

    # -- set-up ----------------------------------------------------------------------------
    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def _scrub(self, text: str) -> str:
        return self.settings.scrub(text)

    def check(self) -> None:
        """Preflight before any work: the key is set and the server answers ``GET /models``.

        Raises ``BackendError`` with one clear line otherwise."""
        client = self._get_client().with_options(timeout=min(self.settings.timeout_s, 10.0))
        import openai  # importable now: the client above raised BackendError otherwise

        where = self.settings.public_base_url()
        try:
            listed = [m.id for m in client.models.list()]
        except (AttributeError, TypeError, ValueError):
            raise BackendError(_not_an_api(where)) from None
        except openai.AuthenticationError:
            raise BackendError(f"the server at {where} rejected OPENAI_API_KEY (401)") from None
        except openai.APIConnectionError as e:
            raise BackendError(f"cannot reach the OpenAI-compatible server at {where}: {type(e).__name__}") from None
        except openai.APIStatusError as e:
            # Reachable, but without a model list (some gateways): the first call will tell.
            log.info("GET %s/models answered %s; skipping the model check", where, e.status_code)
            return
        if listed and self.model not in listed:
            log.warning("model %r is not in the list served by %s (%d models)", self.model, where, len(listed))

    # -- calls -----------------------------------------------------------------------------
    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.stop:
            kwargs["stop"] = list(request.stop)
        fmt = response_format(request.constraint, self.response_format)
        if fmt is not None:
            kwargs["response_format"] = fmt
        # repeat_penalty has no OpenAI equivalent (frequency_penalty is a different scale): ignored.
        return kwargs

    def _attempt(self, request: LLMRequest) -> LLMResponse:
        """One HTTP round trip; transient failures become ``Retryable``, others ``LLMError``."""
        import openai

        start = time.perf_counter()
        try:
            raw = self._get_client().chat.completions.create(**self._kwargs(request))
        except (openai.RateLimitError, openai.InternalServerError) as e:
            err = LLMError(f"{self.model_id}: {self._scrub(e.message)}")
            raise Retryable(err, parse_retry_after(e.response.headers)) from None
        except openai.APIStatusError as e:
            if e.status_code in (408, 409) or e.status_code >= 500:
                err = LLMError(f"{self.model_id}: {self._scrub(e.message)}")
                raise Retryable(err, parse_retry_after(e.response.headers)) from None
            raise LLMError(f"{self.model_id}: {self._scrub(e.message)}") from None
        except openai.APITimeoutError:
            raise Retryable(LLMError(f"{self.model_id}: timed out after {self.settings.timeout_s:g}s")) from None
        except openai.APIConnectionError as e:
            raise Retryable(LLMError(f"{self.model_id}: connection failed ({type(e).__name__})")) from None
        except (openai.APIResponseValidationError, json.JSONDecodeError) as e:
            # Malformed JSON from a flaky gateway: worth another try, then a typed error.
            raise Retryable(LLMError(f"{self.model_id}: malformed response ({type(e).__name__})")) from None
        return self._to_response(raw, request, time.perf_counter() - start)

    def _to_response(self, raw: Any, request: LLMRequest, latency: float) -> LLMResponse:
        if isinstance(raw, (str, bytes)):  # a body that is not JSON: a web page, not the API
            raise LLMError(_not_an_api(self.settings.public_base_url()))
        choices = getattr(raw, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise Retryable(LLMError(f"{self.model_id}: the server answered without any choice"))
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise Retryable(LLMError(f"{self.model_id}: the server answered without message text"))
        usage = getattr(raw, "usage", None)
        if usage is not None and getattr(usage, "prompt_tokens", None) is not None:
            tin, tout, estimated = int(usage.prompt_tokens), int(usage.completion_tokens or 0), False
        else:
            # Some local servers omit usage; estimate so budgets still mean something.
            tin, tout, estimated = estimate_request_tokens(request.messages), estimate_tokens(text), True
        extra: dict[str, Any] = {"finish_reason": getattr(choices[0], "finish_reason", None)}
        if estimated:
            extra["tokens_estimated"] = True
        return LLMResponse(text=text, model=self.model_id, tokens_in=tin, tokens_out=tout, latency_s=latency, extra=extra)

    def complete(self, request: LLMRequest) -> LLMResponse:
        """One chat completion with bounded retries; raises ``LLMError`` when they run out."""
        start = time.perf_counter()
        resp = with_retries(lambda: self._attempt(request), self.retry, self.rng, what=self.model_id)
        resp.latency_s = time.perf_counter() - start
        return resp

    def complete_many(self, requests: list[LLMRequest]) -> list[LLMResponse | LLMError]:
        """Independent requests on a thread pool of ``max_concurrency``; errors stay in place."""

        def one(req: LLMRequest) -> LLMResponse | LLMError:
            try:
                return self.complete(req)
            except LLMError as e:
                return e

        with ThreadPoolExecutor(max_workers=max(1, min(self.max_concurrency, len(requests)))) as pool:
            return list(pool.map(one, requests))


def _not_an_api(where: str) -> str:
    return (f"the server at {where} answered with a web page, not an OpenAI-compatible API: check OPENAI_BASE_URL "
            f"(it usually ends in /v1)")


def parse_spec_options(name: str) -> tuple[str, dict[str, Any]]:
    """``"gpt-4o-mini?concurrency=8"`` -> the model name and typed options."""
    return spec_options(name, _OPTION_TYPES, "openai")


@takes_options(**_OPTION_TYPES)
def load_openai(name: str, **options: Any) -> OpenAIChat:
    """Registry factory for ``openai:<model>[?option=value&...]``; keyword options win."""
    model, spec_options = parse_spec_options(name)
    opts = {**spec_options, **options}
    timeout = float(opts.pop("timeout", 60.0))
    max_retries = int(opts.pop("max_retries", 4))
    policy = RetryPolicy(
        max_retries=max_retries,
        base_delay_s=float(opts.pop("base_delay", 1.0)),
        max_delay_s=float(opts.pop("max_delay", 60.0)),
    )
    settings = OpenAISettings.from_env(timeout_s=timeout, max_retries=max_retries)
    return OpenAIChat(model, settings=settings, retry=policy, **opts)
