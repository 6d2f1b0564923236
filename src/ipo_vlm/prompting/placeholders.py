"""Class placeholders: ``{}`` inside the library, ``<CLASS>`` when shown to an LLM.

LLMs write the placeholder in many spellings (``[CLASS]``, ``{class}``, ``<classname>`` ...);
all of them are mapped back to ``{}`` so that every template is filled by plain
``str.replace`` and never by ``str.format``."""

from __future__ import annotations

import re

from ipo_vlm.errors import ConfigError

#: the placeholder every stored template uses
PLACEHOLDER = "{}"
#: how the placeholder is shown to the LLM by default
LLM_PLACEHOLDER = "<CLASS>"
#: CLIP's plain zero-shot template: the baseline of every run and the first seed of the memory
BASELINE_TEMPLATE = "a photo of a {}."

# Why a template cannot be used (also the rejection reasons counted per LLM call).
REASON_EMPTY = "empty"
REASON_TOO_LONG = "too long"
REASON_NO_PLACEHOLDER = "no placeholder"
REASON_MULTIPLE_PLACEHOLDERS = "multiple placeholders"
REASON_STRAY_BRACES = "stray braces"

# The name inside the brackets: class, classname, class name, class_name, class-name, label
# (any case). Only the listed bracket pairs count, so "{0.__class__}" stays unrecognised.
_NAME = r"\s*(?:class(?:[ _-]?name)?|label)\s*"
_VARIANTS = re.compile(
    r"\{\}|<" + _NAME + r">|\[" + _NAME + r"\]|\{" + _NAME + r"\}|\{\{" + _NAME + r"\}\}",
    re.IGNORECASE,
)
_WS = re.compile(r"\s+")


def to_llm_placeholder(template: str, placeholder: str = LLM_PLACEHOLDER) -> str:
    """Show a ``{}`` template to the LLM, e.g. ``"a photo of a {}."`` -> ``"a photo of a <CLASS>."``."""
    return template.replace(PLACEHOLDER, placeholder)


def from_llm_placeholder(text: str, placeholder: str = LLM_PLACEHOLDER) -> str:
    """Map ``placeholder`` and every recognised spelling of a class placeholder back to ``{}``."""
    if placeholder and placeholder != PLACEHOLDER:
        text = text.replace(placeholder, PLACEHOLDER)
    return _VARIANTS.sub(PLACEHOLDER, text)


def normalize_key(template: str) -> str:
    """The identity of a template for de-duplication: placeholder spellings unified, case
    folded, runs of whitespace collapsed. Punctuation is kept because CLIP scores
    ``"a photo of a {}."`` and ``"a photo of a {}"`` differently."""
    return _WS.sub(" ", from_llm_placeholder(template).casefold()).strip()


def fill(template: str, classname: str) -> str:
    """The prompt for one class: plain replacement, so braces in a template stay inert text."""
    return template.replace(PLACEHOLDER, classname)


def template_problem(template: str, max_chars: int | None = None, stray_braces: bool = False) -> str | None:
    """Why ``template`` cannot be used (one of the ``REASON_*`` constants), or None.

    The one structural rule set for every template: non-empty, at most ``max_chars`` when given,
    ``{}`` exactly once. Other braces are refused unless ``stray_braces``: in LLM output a lone
    brace marks garbled text (and ``"{0.__class__}"`` must never reach code that might format
    it), while a template a user typed is filled by plain replacement, so its braces stay text."""
    if not template.strip():
        return REASON_EMPTY
    if max_chars is not None and len(template) > max_chars:
        return REASON_TOO_LONG
    count = template.count(PLACEHOLDER)
    if count == 0:
        return REASON_NO_PLACEHOLDER
    if count > 1:
        return REASON_MULTIPLE_PLACEHOLDERS
    rest = template.replace(PLACEHOLDER, "")
    if not stray_braces and ("{" in rest or "}" in rest):
        return REASON_STRAY_BRACES
    return None


def require_template(template: str, what: str = "template") -> str:
    """``template`` if usable, else a ``ConfigError`` saying why (for templates users give)."""
    if not isinstance(template, str):
        raise ConfigError(f"{what} must be a string, got {type(template).__name__}")
    problem = template_problem(template, stray_braces=True)
    if problem:
        raise ConfigError(f"{what} {template!r} cannot be used ({problem}): it needs the class placeholder {{}} exactly once")
    return template
