"""Seed templates from image descriptions: a masked description that names the object by the
domain word ("a sketch of a clothing item.") is a template once the domain word is the
placeholder again ("a sketch of a {}."). The captioner then proposes the first candidates, in
its own words, before the LLM is asked: how the images look (medium, setting) is what the
descriptions are for."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ipo_vlm.prompting.parse import validate_template, word_count
from ipo_vlm.prompting.placeholders import PLACEHOLDER, normalize_key


def template_from_description(description: str, domain: str) -> str | None:
    """The description with its first whole-word mention of ``domain`` (singular, any case,
    "an" before it becoming "a") replaced by the placeholder; None when it has no such mention."""
    text = " ".join(str(description).split())
    words = [re.escape(w) for w in str(domain).split()]
    if not text or not words:
        return None
    pattern = re.compile(r"(?<![\w-])(?:(?P<art>an?)\s+)?" + r"\s+".join(words) + r"(?![\w-])", re.IGNORECASE)
    match = pattern.search(text)
    if match is None:
        return None
    art = match.group("art")
    replacement = (("A " if art[0].isupper() else "a ") if art else "") + PLACEHOLDER
    template = text[: match.start()] + replacement + text[match.end() :]
    return template if validate_template(template) is None else None


def templates_from_descriptions(descriptions: Iterable[str], domain: str, k: int, max_words: int | None = None) -> list[str]:
    """Up to ``k`` distinct templates from ``descriptions`` (give them most shared first),
    skipping those without the domain word or over ``max_words``."""
    out: list[str] = []
    seen: set[str] = set()
    for description in descriptions:
        if len(out) >= k:
            break
        template = template_from_description(description, domain)
        if template is None or (max_words is not None and word_count(template) > max_words):
            continue
        key = normalize_key(template)
        if key not in seen:
            seen.add(key)
            out.append(template)
    return out
