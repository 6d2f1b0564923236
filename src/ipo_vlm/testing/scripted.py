"""A scripted LLM for tests and offline demos: canned answers chosen by the request's content.

The answer depends only on the request (messages, sample index, seed), never on how many calls
came before, so a resumed run receives exactly the answers the interrupted run would have seen.

Script file (``scripted:<path.json>``)::

    {
      "responses": ["1. a photo of a <CLASS>.\\n2. ...", "..."],
      "rules": [{"contains": "a blurry photo", "text": "..."}],
      "delay_s": 0.0
    }

``rules`` are tried first, in order: the first whose ``contains`` occurs in the last message
wins (optionally only for one ``sample_index``). Otherwise one of ``responses`` is picked by a
sha256 of the request. A bare JSON list is read as ``responses``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.llm.base import LLMRequest, LLMResponse
from ipo_vlm.registry import nonnegative_float, takes_options


@dataclass(frozen=True)
class Rule:
    contains: str
    text: str
    sample_index: int | None = None

    def matches(self, request: LLMRequest) -> bool:
        if self.sample_index is not None and request.sample_index != self.sample_index:
            return False
        last = request.messages[-1][1] if request.messages else ""
        return self.contains in last


def _estimate_tokens(text: str) -> int:
    try:
        from ipo_vlm.llm.tokens import estimate_tokens
    except ImportError:  # the estimator lives in the LLM package; keep this fake usable alone
        return max(1, len(text) // 4)
    return estimate_tokens(text)


class ScriptedLLM:
    """Replays canned answers. ``answer`` (a function of the request) overrides the script.

    ``requests`` keeps every request received, for tests that inspect the prompts."""

    def __init__(
        self,
        responses: Sequence[str] = (),
        rules: Sequence[Rule] = (),
        answer: Callable[[LLMRequest], str] | None = None,
        delay_s: float = 0.0,
        model_id: str = "scripted",
    ) -> None:
        if not responses and not rules and answer is None:
            raise ConfigError("a scripted LLM needs responses, rules or an answer function")
        self.responses = list(responses)
        self.rules = list(rules)
        self.answer = answer
        self.delay_s = delay_s
        self.model_id = model_id
        self.requests: list[LLMRequest] = []

    def check(self) -> None:
        """Preflight: nothing to reach."""

    def _text_for(self, request: LLMRequest) -> str:
        if self.answer is not None:
            return self.answer(request)
        for rule in self.rules:
            if rule.matches(request):
                return rule.text
        if not self.responses:
            return ""
        key = sha256_json({"messages": [list(m) for m in request.messages], "sample_index": request.sample_index, "seed": request.seed})
        return self.responses[int(key[:12], 16) % len(self.responses)]

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self._text_for(request)
        prompt = "\n".join(content for _, content in request.messages)
        return LLMResponse(
            text=text,
            model=self.model_id,
            tokens_in=_estimate_tokens(prompt),
            tokens_out=_estimate_tokens(text) if text else 0,
        )


@takes_options(delay_s=nonnegative_float)
def load_scripted(name: str, **options: Any) -> ScriptedLLM:
    """Factory for ``scripted:<path.json>`` (see the module docstring for the file format)."""
    if not name:
        raise ConfigError("scripted LLM needs a script file: scripted:<path.json>")
    path = Path(name).expanduser()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read LLM script {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"LLM script {path} is not valid JSON: {e.msg} (line {e.lineno})") from None
    if isinstance(raw, list):
        raw = {"responses": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"LLM script {path} must hold a JSON object or list")
    try:
        rules = [Rule(**r) for r in raw.get("rules", [])]
        responses = [str(r) for r in raw.get("responses", [])]
    except TypeError as e:
        raise ConfigError(f"bad rule in LLM script {path}: {e}") from None
    # the model id names the script's content, so response caches never mix two scripts
    model_id = f"scripted:{sha256_json(raw)[:16]}"
    return ScriptedLLM(responses, rules, delay_s=float(raw.get("delay_s", options.get("delay_s", 0.0))), model_id=model_id)
