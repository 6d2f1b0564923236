"""The leakage guard: image descriptions must not name the classes.

A captioner asked about a pet photo happily writes "a Basset Hound lying on grass"; pasted into
the meta-prompt, that hands the label to the optimizer. ``mask_classnames`` replaces every class
name and its obvious spellings with a neutral word and counts the replacements, so a run records
how much it had to hide."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

DEFAULT_NEUTRAL = "object"

# Characters that separate the words of a class name ("t-shirt", "basset_hound", "st. bernard").
_SEPARATORS = r"[\s\-_'.’/]*"
# Whole words only: not preceded/followed by a letter or digit ("cat" must not hit "catalog").
_LEFT = r"(?<![^\W_])"
_RIGHT = r"(?![^\W_])"
_VOWELS = "aeiou"


def _name_words(name: str) -> list[str]:
    """Lower-case alphanumeric words of a name: ``"T-Shirt"`` -> ``["t", "shirt"]``."""
    return [w for w in re.split(r"[^\w]+|_", name.lower()) if w]


def _plural_pattern(word: str) -> str:
    """The last word of a name with its regular plural forms (-s, -es, -y -> -ies)."""
    if len(word) > 2 and word.endswith("y") and word[-2] not in _VOWELS:
        return re.escape(word[:-1]) + r"(?:y|ies)"
    return re.escape(word) + r"(?:e?s)?"


def _alternatives(classname: str) -> list[str]:
    """The whole name plus each side of a slash: ``"T-shirt/top"`` names "T-shirt" or "top"."""
    names = [classname]
    if "/" in classname:
        names += [part for part in classname.split("/") if part.strip()]
    return names


def _name_pattern(words: list[str]) -> str:
    """Words joined by optional separators, so "t-shirt", "T shirt" and "tshirt" all match."""
    return _SEPARATORS.join([re.escape(w) for w in words[:-1]] + [_plural_pattern(words[-1])])


@lru_cache(maxsize=64)
def _compile(classnames: tuple[str, ...]) -> re.Pattern[str] | None:
    variants: dict[str, list[str]] = {}
    for classname in classnames:
        for alt in _alternatives(classname):
            words = _name_words(alt)
            if words:
                variants.setdefault(" ".join(words), words)
    if not variants:
        return None
    # Longest first: at a given position the alternation takes the first branch that matches,
    # so "basset hound" must be tried before a class called "hound" or "basset".
    ordered = sorted(variants.values(), key=lambda ws: (-len("".join(ws)), ws))
    body = "|".join(_name_pattern(ws) for ws in ordered)
    article = r"(?:(?P<art>\b[Aa][Nn]?)\s+)?"
    # A slash joins alternatives for one thing ("T-shirt/Top", "top / t-shirt"): a mention is
    # masked with the words it is slashed to, or the other half would still name the class
    # (the demo's "t-shirt" is Fashion-MNIST's "T-shirt/top"). Bounded, to stay linear.
    before = r"(?:[^\W_][\w'\-]{0,30}\s?/\s?){0,3}"
    after = r"(?:\s?/\s?[^\W_][\w'\-]{0,30}(?![\w'\-])){0,3}"
    return re.compile(f"{article}{_LEFT}(?P<name>{before}(?:{body}){after}){_RIGHT}", re.IGNORECASE)


def _pluralise(word: str) -> str:
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def _looks_plural(matched: str, classnames: tuple[str, ...]) -> bool:
    """True if the matched text is a plural form that is not itself a class name spelling."""
    low = re.sub(r"[^\w]+|_", "", matched.lower())
    if not low.endswith("s"):
        return False
    bare = {re.sub(r"[^\w]+|_", "", alt.lower()) for c in classnames for alt in _alternatives(c)}
    return low not in bare


def _article_for(word: str, original: str) -> str:
    article = "an" if word[:1].lower() in _VOWELS else "a"
    return article.capitalize() if original[:1].isupper() else article


def _names(classnames: Sequence[str]) -> tuple[str, ...]:
    """The class names a pattern is compiled for, in one canonical order (blank ones dropped),
    so that every caller shares ``_compile``'s cache."""
    return tuple(sorted({c for c in classnames if c and c.strip()}))


def mentioned_class(text: str, classnames: Sequence[str]) -> str | None:
    """The first mention of a class name in ``text`` as written there (the same spellings
    ``mask_classnames`` finds), or None when no class is named."""
    pattern = _compile(_names(classnames))
    match = pattern.search(text) if pattern is not None and text else None
    return match.group("name") if match else None


def mask_classnames(text: str, classnames: Sequence[str], neutral: str | None = None) -> tuple[str, int]:
    """Replace every mention of a class name in ``text`` with a neutral word.

    Matches are case-insensitive and whole-word, and cover plural forms (-s, -es, -ies) and
    spellings that differ only in separators ("t-shirt", "T shirts", "tshirt"). Longer names win
    over shorter ones they contain. A preceding "a"/"an" is adjusted to the neutral word, and a
    plural mention becomes a plural neutral word. Returns ``(masked_text, replacements)``."""
    neutral = (neutral or DEFAULT_NEUTRAL).strip() or DEFAULT_NEUTRAL
    names = _names(classnames)
    pattern = _compile(names)
    if pattern is None or not text:
        return text, 0
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        plural = _looks_plural(match.group("name"), names)
        word = _pluralise(neutral) if plural else neutral
        art = match.group("art")
        if art is None:
            return word
        if plural:  # "a cats" does not occur in practice; keep the article as written
            return f"{art} {word}"
        return f"{_article_for(word, art)} {word}"

    return pattern.sub(replace, text), count
