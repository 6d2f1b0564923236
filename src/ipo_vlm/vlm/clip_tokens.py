"""Token counts of a template filled with many class names, without tokenising every prompt.

Checking a candidate against CLIP's 77-token limit means counting the tokens of its prompt for
every class: 1000 tokenisations per template on ImageNet, more than the scoring itself costs.
CLIP's tokenizer normalises (NFC, whitespace, lowercase), splits the text into words by a
regular expression (letter runs, single digits, runs of other symbols, and the contractions
``'s 't 're 've 'm 'll 'd``) and applies BPE to each word alone. So when the class name meets
the template's text at a clean word boundary, the prompt's count is the sum of the counts of
the text before the placeholder, the class name, and the text after it: each is tokenised
once, the class names once per run.

A boundary is clean when the characters on both sides cannot belong to one word: a space on
either side, or a letter beside a symbol, or a digit (digits are words of their own) — never an
apostrophe, which could start a contraction. Only ASCII text is decomposed (Unicode lowercasing
and composition can depend on neighbours); anything else is tokenised whole, as are templates
that hold the placeholder more than once or special-token text. The result is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ipo_vlm.prompting.placeholders import PLACEHOLDER, fill

#: counts texts, start and end tokens included (the tokenizer adds both to every text)
CountFn = Callable[[list[str]], list[int]]
_SPECIALS = 2


def _kind(ch: str) -> str:
    if ch.isspace():
        return "space"
    if ch.isdigit():
        return "digit"
    return "letter" if ch.isalpha() else "symbol"


def clean_boundary(before: str, after: str) -> bool:
    """Whether CLIP's word split never joins the last character of ``before`` with the first
    of ``after``."""
    if not before or not after:
        return True
    a, b = before[-1], after[0]
    if a == "'" or b == "'":
        return False
    ka, kb = _kind(a), _kind(b)
    return "space" in (ka, kb) or "digit" in (ka, kb) or ka != kb


def _plain(text: str) -> bool:
    return text.isascii() and "<|" not in text and "|>" not in text


class FilledTokenCounter:
    """Exact token counts of ``fill(template, c)`` for many classes ``c``; class names' own
    counts are kept (one entry per class name)."""

    def __init__(self, count: CountFn) -> None:
        self._count = count
        self._classes: dict[str, int] = {}

    def _class_counts(self, names: Sequence[str]) -> list[int]:
        new = [n for n in dict.fromkeys(names) if n not in self._classes]
        if new:
            self._classes.update(zip(new, self._count(new)))
        return [self._classes[n] for n in names]

    def counts(self, template: str, classnames: Sequence[str]) -> list[int]:
        """Token counts (start and end included) of the template filled with each class name."""
        if template.count(PLACEHOLDER) != 1 or not _plain(template.replace(PLACEHOLDER, "")):
            return self._count([fill(template, c) for c in classnames]) if classnames else []
        left, right = template.split(PLACEHOLDER)
        n_left, n_right = (n - _SPECIALS for n in self._count([left, right]))
        out: list[int | None] = [None] * len(classnames)
        easy = [i for i, c in enumerate(classnames) if c and _plain(c) and clean_boundary(left, c) and clean_boundary(c, right)]
        for i, n in zip(easy, self._class_counts([classnames[i] for i in easy])):
            out[i] = n + n_left + n_right
        hard = [i for i, v in enumerate(out) if v is None]
        if hard:
            for i, n in zip(hard, self._count([fill(template, classnames[i]) for i in hard])):
                out[i] = n
        return [int(n) for n in out]  # type: ignore[arg-type]
