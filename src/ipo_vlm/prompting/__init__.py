"""The Prompt Optimization Prompt: its text (``text``), rendering (``render``) and the parsing
and validation of what the LLM answers (``parse``, ``extract``, ``placeholders``)."""

from ipo_vlm.prompting.parse import (
    REASON_ALREADY_SCORED,
    REASON_CHECK_FAILED,
    REASON_REPEATED,
    REASON_TOO_MANY,
    REASON_TOO_MANY_WORDS,
    ParseResult,
    parse_candidates,
    validate_template,
    word_count,
)
from ipo_vlm.prompting.placeholders import (
    BASELINE_TEMPLATE,
    LLM_PLACEHOLDER,
    PLACEHOLDER,
    REASON_EMPTY,
    REASON_MULTIPLE_PLACEHOLDERS,
    REASON_NO_PLACEHOLDER,
    REASON_STRAY_BRACES,
    REASON_TOO_LONG,
    fill,
    from_llm_placeholder,
    normalize_key,
    require_template,
    template_problem,
    to_llm_placeholder,
)
from ipo_vlm.prompting.render import META_PROMPT_STYLES, MetaPromptInputs, render_memory, render_meta_prompt, sort_for_prompt
from ipo_vlm.prompting.text import PROMPT_VERSION

__all__ = [
    "BASELINE_TEMPLATE",
    "LLM_PLACEHOLDER",
    "PLACEHOLDER",
    "PROMPT_VERSION",
    "REASON_ALREADY_SCORED",
    "REASON_CHECK_FAILED",
    "REASON_EMPTY",
    "REASON_MULTIPLE_PLACEHOLDERS",
    "REASON_NO_PLACEHOLDER",
    "REASON_REPEATED",
    "REASON_STRAY_BRACES",
    "REASON_TOO_LONG",
    "REASON_TOO_MANY",
    "REASON_TOO_MANY_WORDS",
    "META_PROMPT_STYLES",
    "MetaPromptInputs",
    "ParseResult",
    "fill",
    "from_llm_placeholder",
    "normalize_key",
    "parse_candidates",
    "render_memory",
    "require_template",
    "render_meta_prompt",
    "sort_for_prompt",
    "template_problem",
    "to_llm_placeholder",
    "validate_template",
    "word_count",
]
