"""``openai:<model>``: image descriptions from a vision chat model behind an OpenAI-compatible API.

The same connection settings as the LLM backend (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), so
GPT-4o-class APIs and local servers (vLLM serving MiniCPM-V, Ollama, llama.cpp server) all work.
Each image is sent as a base64 ``data:`` URL in an ``image_url`` content part, one request per
image. Options ride on the spec (``openai:gpt-4o-mini?max_side=512&concurrency=8``) or come as
keyword arguments."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ipo_vlm.captioner.images import IMAGE_FORMATS, image_data_url
from ipo_vlm.registry import nonnegative_float, nonnegative_int, positive_float, positive_int, spec_options, takes_options, text
from ipo_vlm.errors import BackendError, ConfigError, squeeze
from ipo_vlm.llm.openai_settings import DEFAULT_BASE_URL, OpenAISettings
from ipo_vlm.llm.retry import Retryable, RetryPolicy, parse_retry_after, with_retries

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

_OPTION_TYPES: dict[str, Any] = {
    "max_tokens": positive_int, "temperature": nonnegative_float, "max_side": positive_int, "image_format": text,
    "detail": text, "concurrency": positive_int, "timeout": positive_float, "max_retries": nonnegative_int,
    "base_delay": nonnegative_float, "max_delay": nonnegative_float,
}
_DETAILS = ("auto", "low", "high")


class OpenAIVisionCaptioner:
    """Describes each image with one chat completion (instruction + image)."""

    def __init__(
        self, model: str, settings: OpenAISettings | None = None, *, max_tokens: int = 120,
        temperature: float = 0.0, max_side: int = 768, image_format: str = "png", detail: str | None = None,
        concurrency: int = 4, retry: RetryPolicy | None = None,
    ) -> None:
        if not model:
            raise ConfigError("the openai captioner needs a model name, e.g. openai:gpt-4o-mini")
        if image_format not in IMAGE_FORMATS:
            raise ConfigError(f"unknown image_format {image_format!r}; known: {', '.join(IMAGE_FORMATS)}")
        if detail is not None and detail not in _DETAILS:
            raise ConfigError(f"unknown detail {detail!r}; known: {', '.join(_DETAILS)}")
        if max_tokens < 1 or concurrency < 1 or max_side < 16:
            raise ConfigError("openai captioner: max_tokens and concurrency must be >= 1, max_side >= 16")
        self.model = model
        self.settings = settings or OpenAISettings.from_env()
        self.settings.api_key()  # a missing key fails here, before any image is opened
        self.max_tokens, self.temperature, self.max_side = max_tokens, temperature, max_side
        self.image_format, self.detail, self.concurrency = image_format, detail, concurrency
        self.retry = retry or RetryPolicy(max_retries=self.settings.max_retries)
        self._rng = random.Random(0)  # seeded jitter: a run's waits can be replayed
        base = self.settings.public_base_url()
        where = "" if base == DEFAULT_BASE_URL else f"@{base}"
        # Everything that changes the answer is in the id, hence in the description cache key.
        params = f"max_tokens={max_tokens},temperature={temperature:g},max_side={max_side},{image_format}"
        self.model_id = f"openai:{model}{where};{params}" + (f",detail={detail}" if detail else "")
        self._client: Any = None

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self.settings.client()
        return self._client

    def _scrub(self, text: str) -> str:
        return squeeze(self.settings.scrub(text), 200)

    def _messages(self, image: "Image.Image", instruction: str) -> list[dict[str, Any]]:
        image_url: dict[str, str] = {"url": image_data_url(image, self.image_format, self.max_side)}
        if self.detail:
            image_url["detail"] = self.detail
        content = [{"type": "text", "text": instruction}, {"type": "image_url", "image_url": image_url}]
        return [{"role": "user", "content": content}]

    def _attempt(self, messages: list[dict[str, Any]]) -> str:
        """One request; transient failures (429, 5xx, timeouts, connection) become ``Retryable``."""
        import openai

        try:
            raw = self._get_client().chat.completions.create(
                model=self.model, messages=messages, max_tokens=self.max_tokens, temperature=self.temperature)
        except openai.APIStatusError as e:
            # The body's own message, on one line, reads better than the SDK's "Error code: ..." wrapper.
            from ipo_vlm.llm.formats import server_reason

            detail = server_reason(e.body, e.message)
            err = BackendError(f"captioner {self.model}: HTTP {e.status_code}: {self._scrub(detail)}")
            if e.status_code in (408, 409, 429) or e.status_code >= 500:
                raise Retryable(err, parse_retry_after(e.response.headers)) from None
            raise err from None
        except openai.APITimeoutError:
            raise Retryable(BackendError(f"captioner {self.model}: timed out after {self.settings.timeout_s:g}s")) from None
        except openai.APIConnectionError:
            where = self.settings.public_base_url()
            raise Retryable(BackendError(f"captioner {self.model}: cannot reach {where}")) from None
        except (openai.APIResponseValidationError, ValueError) as e:
            raise Retryable(BackendError(f"captioner {self.model}: malformed response ({type(e).__name__})")) from None
        choices = getattr(raw, "choices", None) or []
        text = getattr(getattr(choices[0], "message", None), "content", None) if choices else None
        if not isinstance(text, str) or not text.strip():
            raise Retryable(BackendError(f"captioner {self.model}: the server answered without a description"))
        return text.strip()

    def describe(self, images: Sequence["Image.Image"], instruction: str) -> list[str]:
        """One description per image, in order; ``BackendError`` once an image's retries run out."""
        requests = [self._messages(image, instruction) for image in images]

        def one(messages: list[dict[str, Any]]) -> str:
            return with_retries(lambda: self._attempt(messages), self.retry, self._rng, what=f"captioner {self.model}")

        if len(requests) <= 1 or self.concurrency == 1:
            return [one(m) for m in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(one, requests))


def parse_spec_options(name: str) -> tuple[str, dict[str, Any]]:
    """``"gpt-4o-mini?max_side=512"`` -> the model name and typed options."""
    return spec_options(name, _OPTION_TYPES, "openai captioner")


@takes_options(**_OPTION_TYPES)
def load_openai_captioner(name: str, **options: Any) -> OpenAIVisionCaptioner:
    """Registry factory for ``openai:<model>[?option=value&...]``; unknown keywords (``vlm``, ...)
    are ignored, known ones win over the spec's."""
    model, spec_options = parse_spec_options(name)
    opts = {**spec_options, **{k: v for k, v in options.items() if k in _OPTION_TYPES or k == "retry"}}
    max_retries = int(opts.pop("max_retries", 4))
    settings = OpenAISettings.from_env(timeout_s=float(opts.pop("timeout", 60.0)), max_retries=max_retries)
    policy = opts.pop("retry", None) or RetryPolicy(
        max_retries=max_retries, base_delay_s=float(opts.pop("base_delay", 1.0)),
        max_delay_s=float(opts.pop("max_delay", 60.0)))
    opts.pop("base_delay", None)
    opts.pop("max_delay", None)
    return OpenAIVisionCaptioner(model, settings, retry=policy, **opts)
