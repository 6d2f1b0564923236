"""``openai:<model>``: any OpenAI-compatible chat API through the official ``openai`` SDK.

The server comes from ``OPENAI_BASE_URL`` (vLLM, Ollama, llama.cpp server, LM Studio, gateways),
the key from ``OPENAI_API_KEY``. Options can ride on the spec as a query string, e.g.
``openai:qwen2.5?response_format=json_object&concurrency=8&timeout=30``; none is needed. Retries
are ours: bounded, exponential, honouring ``Retry-After`` on 429, 5xx, timeouts and broken
answers. A server that rejects the ``response_format`` is asked again at once with the next one
(``llm.formats``); that costs no retry and is recorded with the call."""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ipo_vlm.registry import nonnegative_float, nonnegative_int, positive_float, positive_int, spec_options, takes_options, text
from ipo_vlm.errors import BackendError, ConfigError, LLMError
from ipo_vlm.llm.base import LLMRequest, LLMResponse
from ipo_vlm.llm.constraint import response_format
from ipo_vlm.llm.formats import AUTO, FORMAT_CHAIN, FORMATS, is_format_rejection, server_reason
from ipo_vlm.llm.openai_settings import DEFAULT_BASE_URL, OpenAISettings
from ipo_vlm.llm.retry import Retryable, RetryPolicy, parse_retry_after, with_retries
from ipo_vlm.llm.tokens import estimate_request_tokens, estimate_tokens

log = logging.getLogger(__name__)

#: seconds a call may take on any server but OpenAI's own (60 s there) unless ``timeout`` is given
LOCAL_TIMEOUT_S = 600.0

_OPTION_TYPES: dict[str, Any] = {
    "response_format": text,
    "concurrency": positive_int,
    "timeout": positive_float,
    "max_retries": nonnegative_int,
    "base_delay": nonnegative_float,
    "max_delay": nonnegative_float,
}


class FormatRejected(Exception):
    """The server rejected the request's ``response_format`` (not worth a retry as it is)."""


class OpenAIChat:
    """Chat completions against an OpenAI-compatible server.

    ``response_format`` is the first format a constrained call tries: ``json_schema`` (OpenAI
    structured outputs), ``json_object`` (JSON mode with the schema beside it, as llama.cpp's
    servers take it), ``none``, or ``auto`` (the default: ``json_schema``). A rejected format
    falls back down that chain. The raw text is returned either way."""

    def __init__(
        self,
        model: str,
        settings: OpenAISettings | None = None,
        response_format: str = AUTO,
        concurrency: int = 4,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not model:
            raise ConfigError("the openai backend needs a model name, e.g. openai:gpt-4o-mini")
        if response_format != AUTO and response_format not in FORMAT_CHAIN:
            raise ConfigError(f"unknown response_format {response_format!r}; known: {', '.join((AUTO, *FORMAT_CHAIN))}")
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
    def _kwargs(self, request: LLMRequest, fmt: str) -> dict[str, Any]:
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
        constraint = response_format(request.constraint, fmt)
        if constraint is not None:
            kwargs["response_format"] = constraint
        # repeat_penalty has no OpenAI equivalent (frequency_penalty is a different scale): ignored.
        return kwargs

    def _reason(self, e: Any) -> str:
        """``HTTP status: the server's reason`` on one line (the reason from the error body)."""
        body = getattr(e, "body", None)
        if body is None and getattr(e, "response", None) is not None:
            body = e.response.text
        return f"HTTP {e.status_code}: {self._scrub(server_reason(body, e.message))}"

    def _attempt(self, request: LLMRequest, fmt: str = "none") -> LLMResponse:
        """One HTTP round trip; transient failures become ``Retryable``, a rejected response
        format ``FormatRejected``, others ``LLMError``."""
        import openai

        start = time.perf_counter()
        try:
            raw = self._get_client().chat.completions.create(**self._kwargs(request, fmt))
        except openai.APIStatusError as e:
            reason = self._reason(e)
            if request.constraint is not None and is_format_rejection(e.status_code, reason, fmt):
                raise FormatRejected(reason) from None
            err = LLMError(f"{self.model_id}: {reason}")
            if e.status_code in (408, 409, 429) or e.status_code >= 500:
                raise Retryable(err, parse_retry_after(e.response.headers)) from None
            raise err from None
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
        if request.constraint is None:
            resp = self._with_retries(request, "none")
        else:
            resp = self._complete_constrained(request)
        resp.latency_s = time.perf_counter() - start
        return resp

    def _with_retries(self, request: LLMRequest, fmt: str) -> LLMResponse:
        return with_retries(lambda: self._attempt(request, fmt), self.retry, self.rng, what=self.model_id)

    @property
    def format_key(self) -> tuple[str, str]:
        return (self.settings.public_base_url(), self.model)

    def _complete_constrained(self, request: LLMRequest) -> LLMResponse:
        first = FORMAT_CHAIN[0] if self.response_format == AUTO else self.response_format
        fmt, confirmed = FORMATS.start(self.format_key, first)
        if confirmed:
            return self._negotiate(request, fmt)
        with FORMATS.probe(self.format_key):  # one call at a time until the server took a format
            return self._negotiate(request, FORMATS.start(self.format_key, first)[0])

    def _negotiate(self, request: LLMRequest, fmt: str) -> LLMResponse:
        """Call with ``fmt``, stepping down the chain at once when the server rejects it."""
        rejected: list[dict[str, str]] = []
        while True:
            try:
                resp = self._with_retries(request, fmt)
            except FormatRejected as r:
                rejected.append({"format": fmt, "reason": str(r)})
                nxt = FORMATS.rejected(self.format_key, fmt, str(r))
                log.warning("%s rejected response_format %s; using %s from now on", self.model_id, fmt, nxt)
                if nxt is None:
                    raise LLMError(f"{self.model_id}: {r}") from None
                fmt = nxt
                continue
            FORMATS.accepted(self.format_key, fmt)
            resp.extra["response_format"] = fmt
            if rejected:
                resp.extra["response_format_rejected"] = rejected
            return resp

    def probe_formats(self) -> list[tuple[str, str, str]]:
        """``(format, verdict, reason)`` per response format, one tiny call each and no retries;
        the verdict is ``accepted``, ``rejected`` (the format) or ``failed`` (anything else)."""
        from ipo_vlm.llm.base import OutputConstraint

        request = LLMRequest(messages=(("user", "Write one template for photos of animals, with <CLASS> once."),),
                             temperature=0.0, max_tokens=24, seed=0, constraint=OutputConstraint(1))
        out = []
        for fmt in FORMAT_CHAIN:
            try:
                self._attempt(request, fmt)
                out.append((fmt, "accepted", ""))
            except FormatRejected as r:
                out.append((fmt, "rejected", str(r)))
            except Retryable as r:
                out.append((fmt, "failed", str(r.cause).removeprefix(f"{self.model_id}: ")))
            except LLMError as e:
                out.append((fmt, "failed", str(e).removeprefix(f"{self.model_id}: ")))
        return out

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
    timeout = opts.pop("timeout", None)
    max_retries = int(opts.pop("max_retries", 4))
    policy = RetryPolicy(
        max_retries=max_retries,
        base_delay_s=float(opts.pop("base_delay", 1.0)),
        max_delay_s=float(opts.pop("max_delay", 60.0)),
    )
    settings = OpenAISettings.from_env(max_retries=max_retries)
    if timeout is None and settings.base_url.rstrip("/") != DEFAULT_BASE_URL:
        # A server of one's own may well be a CPU answering a 400-token call in minutes: a
        # timeout of a minute would make it start the same call again while it still works.
        timeout = LOCAL_TIMEOUT_S
    settings = replace(settings, timeout_s=float(timeout if timeout is not None else settings.timeout_s))
    return OpenAIChat(model, settings=settings, retry=policy, **opts)
