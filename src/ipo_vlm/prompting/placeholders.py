"""Class placeholders: ``{}`` inside the library, ``<CLASS>`` when shown to an LLM.

LLMs write the placeholder in many spellings (``[CLASS]``, ``{class}``, ``<classname>`` ...);
all of them are mapped back to ``{}`` so that every template is filled by plain
``str.replace`` and never by ``str.format``."""

from __future__ import annotations

import re

#: the placeholder every stored template uses
PLACEHOLDER = "{}"
#: how the placeholder is shown to the LLM by default
LLM_PLACEHOLDER = "<CLASS>"

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
