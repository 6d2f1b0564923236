"""Rendering the Prompt Optimization Prompt: ``render_meta_prompt(inputs) -> messages``."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ipo_vlm.errors import ConfigError, squeeze
import ipo_vlm.prompting.text as T
from ipo_vlm.prompting.placeholders import LLM_PLACEHOLDER, to_llm_placeholder
from ipo_vlm.prompting.reflect import Reflection, render_reflection
from ipo_vlm.scored import ScoredTemplate, worst_first

_MARKER = re.compile(r"\{(\w+)\}")

#: the closing instructions a meta-prompt can end with
META_PROMPT_STYLES = {"paper": T.CLOSING_INSTRUCTION, "edit": T.CLOSING_INSTRUCTION_EDIT}

#: ``optimize.guidance`` -> (paragraph after the task, sentence after the closing instruction)
GUIDANCE = {
    "none": ("", ""),
    "looks": ("", T.GUIDANCE_LOOKS),
    "mechanism": (T.GUIDANCE_MECHANISM, ""),
    "both": (T.GUIDANCE_MECHANISM, T.GUIDANCE_LOOKS),
}


@dataclass(frozen=True)
class MetaPromptInputs:
    """Everything one meta-prompt depends on.

    ``memory`` holds scored templates (``{}`` placeholder, accuracy in [0, 1]) in any order
    (it is sorted when rendered); ``descriptions`` are image descriptions already chosen
    within the caller's budget; ``dataset_name`` is kept for records and is not shown to
    the LLM (the ``domain`` word says what the images are).

    ``style`` picks the closing instruction: ``paper`` (free rewrites, the paper's) or ``edit``
    (small edits of the best templates); ``worst`` holds scored templates shown as what to avoid
    (none: no such section); ``max_words`` adds the word limit to the instruction; ``guidance``
    says what makes a template work (:data:`GUIDANCE`); ``reflection`` shows the best template's
    errors on the training images, just before the closing instruction."""

    domain: str
    n_candidates: int = 5
    memory: Sequence[ScoredTemplate] = ()
    descriptions: Sequence[str] = ()
    placeholder: str = LLM_PLACEHOLDER
    dataset_name: str = ""
    style: str = "paper"
    worst: Sequence[ScoredTemplate] = ()
    max_words: int | None = None
    guidance: str = "none"
    reflection: Reflection | None = None

    def __post_init__(self) -> None:
        if self.guidance not in GUIDANCE:
            raise ConfigError(f"unknown guidance {self.guidance!r}; known: {', '.join(GUIDANCE)}")
        if self.style not in META_PROMPT_STYLES:
            raise ConfigError(f"unknown meta-prompt style {self.style!r}; known: {', '.join(META_PROMPT_STYLES)}")
        if self.max_words is not None and self.max_words < 1:
            raise ConfigError(f"max_words must be >= 1, got {self.max_words}")
        if not self.domain.strip():
            raise ConfigError("the meta-prompt needs a non-empty domain (what the images show)")
        if self.n_candidates < 1:
            raise ConfigError(f"n_candidates must be >= 1, got {self.n_candidates}")
        if not self.placeholder.strip() or "\n" in self.placeholder or self.placeholder == "{}":
            raise ConfigError(f"unusable LLM placeholder {self.placeholder!r}")


def render_meta_prompt(inputs: MetaPromptInputs) -> tuple[tuple[str, str], ...]:
    """The ``(role, content)`` messages (system, user) for ``LLMRequest.messages``."""
    ph = inputs.placeholder
    parts = [_fill(T.TASK_INSTRUCTION, domain=squeeze(inputs.domain), placeholder=ph)]
    paragraph, sentence = GUIDANCE[inputs.guidance]
    if paragraph:
        parts.append(_fill(paragraph, placeholder=ph))
    descriptions = [squeeze(d) for d in inputs.descriptions if d and d.strip()]
    if descriptions:
        lines = [_fill(T.DESCRIPTION_LINE, description=d) for d in descriptions]
        parts.append("\n".join([T.DESCRIPTIONS_HEADER, *lines]))
    if inputs.worst:
        lines = [squeeze(to_llm_placeholder(e.template, ph)) for e in inputs.worst]
        parts.append("\n".join([T.WORST_HEADER, *lines]))
    parts.append(render_memory(inputs.memory, ph))
    if inputs.reflection is not None:
        parts.append(render_reflection(inputs.reflection))
    closing = _fill(META_PROMPT_STYLES[inputs.style], n=str(inputs.n_candidates), placeholder=ph)
    if inputs.max_words is not None:
        closing += _fill(T.LENGTH_LIMIT, max_words=str(inputs.max_words))
    if sentence and not descriptions:
        sentence = T.GUIDANCE_LOOKS_UNDESCRIBED
    closing += sentence
    parts.append(closing)
    return (("system", T.SYSTEM_PROMPT), ("user", "\n\n".join(parts)))


def render_memory(memory: Sequence[ScoredTemplate], placeholder: str = LLM_PLACEHOLDER) -> str:
    """The memory block: ascending by accuracy (ties: higher loss first), best last."""
    if not memory:
        return T.MEMORY_EMPTY
    lines = [T.MEMORY_HEADER]
    for entry in sort_for_prompt(memory):
        lines.append(
            _fill(
                T.MEMORY_LINE,
                template=squeeze(to_llm_placeholder(entry.template, placeholder)),
                accuracy=_percent(entry.accuracy),
                loss=_loss(entry.loss),
            )
        )
    return "\n".join(lines)


def sort_for_prompt(memory: Sequence[ScoredTemplate]) -> list[ScoredTemplate]:
    """Worst first, best last: accuracy ascending, and for equal accuracy the higher loss
    first (:func:`ipo_vlm.scored.worst_first`). Stable, so full ties keep the caller's order."""
    return worst_first(memory)


def _fill(text: str, /, **values: str) -> str:
    # One pass of plain substitution: values (domains, descriptions, LLM-written templates)
    # are never re-scanned, so braces inside them stay literal.
    return _MARKER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _percent(accuracy: float) -> str:
    if accuracy is not None and not math.isnan(accuracy) and not 0.0 <= accuracy <= 1.0:
        # files hold fractions; a percentage here would silently show 8100 %
        raise ValueError(f"memory accuracy must be a fraction in [0, 1], got {accuracy}")
    return "nan" if accuracy is None or math.isnan(accuracy) else f"{100.0 * accuracy:.1f}"


def _loss(loss: float) -> str:
    return "nan" if loss is None or math.isnan(loss) else f"{loss:.3f}"
