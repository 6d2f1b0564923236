"""The meta-prompt side of a step: render the Prompt Optimization Prompt from the memory and
turn the LLM's answer into candidate templates (with ``{}``), via :mod:`ipo_vlm.prompting`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ipo_vlm.prompting.placeholders import LLM_PLACEHOLDER
from ipo_vlm.prompting.reflect import Reflection
from ipo_vlm.scored import ScoredTemplate

@dataclass
class Parsed:
    """The loop's view of one parsed LLM answer."""

    valid: list[str]  # templates with ``{}``, new and usable, in the order the LLM gave them
    returned: int  # candidate lines the LLM returned
    rejected: dict[str, int] = field(default_factory=dict)  # reason -> count


class Proposer(Protocol):
    """Turns the memory into a meta-prompt and an LLM answer into candidate templates."""

    max_chars: int
    #: the word limit of a template (also the output grammar's), or None
    max_words: int | None

    def messages(self, memory: Sequence[ScoredTemplate], worst: Sequence[ScoredTemplate] = (),
                 reflection: Reflection | None = None) -> tuple[tuple[str, str], ...]: ...

    def parse(self, text: str, seen: set[str]) -> Parsed: ...

    def key(self, template: str) -> str: ...


#: characters a word may take on average when ``max_words`` bounds a template: the parser's
#: length cap then (the output grammar bounds the words themselves)
CHARS_PER_WORD = 12


class MetaPromptProposer:
    """Renders meta-prompts for one run (fixed domain, descriptions, candidates per step,
    closing-instruction ``style``, word limit, ``guidance``) and parses the answers."""

    def __init__(
        self,
        domain: str,
        n_candidates: int,
        descriptions: Sequence[str],
        dataset_name: str,
        check: Callable[[str], str | None] | None = None,
        max_chars: int = 300,
        style: str = "paper",
        max_words: int | None = None,
        guidance: str = "none",
    ) -> None:
        self.domain = domain
        self.n_candidates = n_candidates
        self.descriptions = list(descriptions)
        self.dataset_name = dataset_name
        self.check = check
        self.max_chars = max_chars if max_words is None else min(max_chars, CHARS_PER_WORD * max_words)
        self.style = style
        self.max_words = max_words
        self.guidance = guidance

    def messages(self, memory: Sequence[ScoredTemplate], worst: Sequence[ScoredTemplate] = (),
                 reflection: Reflection | None = None) -> tuple[tuple[str, str], ...]:
        from ipo_vlm.prompting import MetaPromptInputs, render_meta_prompt

        inputs = MetaPromptInputs(
            domain=self.domain,
            n_candidates=self.n_candidates,
            memory=list(memory),
            descriptions=self.descriptions,
            placeholder=LLM_PLACEHOLDER,
            dataset_name=self.dataset_name,
            style=self.style,
            worst=list(worst),
            max_words=self.max_words,
            guidance=self.guidance,
            reflection=reflection,
        )
        return tuple((role, content) for role, content in render_meta_prompt(inputs))

    def parse(self, text: str, seen: set[str]) -> Parsed:
        from ipo_vlm.prompting import parse_candidates

        result = parse_candidates(text, placeholder=LLM_PLACEHOLDER, seen=seen, check=self.check,
                                   max_chars=self.max_chars, max_words=self.max_words)
        return Parsed(valid=list(result.valid), returned=result.returned, rejected=dict(result.rejection_counts()))

    def key(self, template: str) -> str:
        from ipo_vlm.prompting import normalize_key

        return normalize_key(template)
