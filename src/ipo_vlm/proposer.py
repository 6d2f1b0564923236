"""The meta-prompt side of a step: render the Prompt Optimization Prompt from the memory and
turn the LLM's answer into candidate templates (with ``{}``), via :mod:`ipo_vlm.prompting`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ipo_vlm.loop import LLM_PLACEHOLDER, Parsed

log = logging.getLogger(__name__)

REASON_TOKEN_LIMIT = "over the VLM's token limit"


def memory_rows(entries: Sequence[Any]) -> list[tuple[str, float, float]]:
    """``(template, accuracy, loss)`` rows from memory entries or ready-made tuples."""
    rows = []
    for e in entries:
        if isinstance(e, tuple):
            rows.append((e[0], float(e[1]), float(e[2])))
        else:
            rows.append((e.template, float(e.accuracy), float(e.loss)))
    return rows


def _grouped(check: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """The VLM's check names the class and token count; rejection counts need one reason per
    kind, so the details go to the debug log instead."""

    def grouped(template: str) -> str | None:
        reason = check(template)
        if reason and "token" in reason:
            log.debug("rejected %r: %s", template, reason)
            return REASON_TOKEN_LIMIT
        return reason

    return grouped


class MetaPromptProposer:
    """Renders meta-prompts for one run (fixed domain, descriptions, candidates per step)."""

    def __init__(
        self,
        domain: str,
        n_candidates: int,
        descriptions: Sequence[str],
        dataset_name: str,
        check: Callable[[str], str | None] | None = None,
        max_chars: int = 300,
    ) -> None:
        self.domain = domain
        self.n_candidates = n_candidates
        self.descriptions = list(descriptions)
        self.dataset_name = dataset_name
        self.check = _grouped(check) if check else None
        self.max_chars = max_chars

    def messages(self, memory: Sequence[Any]) -> tuple[tuple[str, str], ...]:
        from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt

        inputs = MetaPromptInputs(
            domain=self.domain,
            n_candidates=self.n_candidates,
            memory=memory_rows(memory),
            descriptions=self.descriptions,
            placeholder=LLM_PLACEHOLDER,
            dataset_name=self.dataset_name,
        )
        return tuple((role, content) for role, content in render_meta_prompt(inputs))

    def parse(self, text: str, seen: set[str]) -> Parsed:
        from ipo_vlm.prompting import parse_candidates

        result = parse_candidates(text, placeholder=LLM_PLACEHOLDER, seen=seen, check=self.check, max_chars=self.max_chars)
        return Parsed(valid=list(result.valid), returned=result.returned, rejected=dict(result.rejection_counts()))

    def key(self, template: str) -> str:
        from ipo_vlm.prompting import normalize_key

        return normalize_key(template)
