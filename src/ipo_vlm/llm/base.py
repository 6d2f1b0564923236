"""The LLM protocol: one method, ``complete(request) -> response``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


#: the version of the grammar and schema that ``llm.constraint`` renders for an OutputConstraint:
#: bump it whenever they change, since it is part of the response-cache key
CONSTRAINT_VERSION = 4


@dataclass(frozen=True)
class OutputConstraint:
    """Asks the backend to restrict the answer to ``n`` templates, one per line, each holding
    ``placeholder`` exactly once and, when ``max_words`` is set, at most that many words (the
    placeholder counting as one, as ``prompting.parse.word_count`` counts them). GBNF grammar
    for llama.cpp, JSON schema for APIs that have it; parsing stays tolerant either way."""

    n: int
    placeholder: str = "<CLASS>"
    max_chars: int = 300
    max_words: int | None = None


@dataclass(frozen=True)
class LLMRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repeat_penalty: float | None = None
    #: distinguishes several samples of the same prompt (distinct cache entries)
    sample_index: int = 0
    constraint: OutputConstraint | None = None

    def cache_payload(self, model_id: str) -> dict[str, Any]:
        """Everything that changes the answer, for the response-cache key."""
        payload = asdict(self)
        payload["messages"] = [list(m) for m in self.messages]
        payload["stop"] = list(self.stop)
        payload["model"] = model_id
        if self.constraint is not None:
            # the same constraint renders differently as the grammar evolves; old answers must not match
            payload["constraint_version"] = CONSTRAINT_VERSION
        return payload


@dataclass
class LLMResponse:
    text: str
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False
    call_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class LLM(Protocol):
    """A chat backend. It may also have ``cache_id`` (the response cache's key for it, when a
    setting besides the model changes its answers) and ``max_concurrency``."""

    model_id: str

    def complete(self, request: LLMRequest) -> LLMResponse: ...
