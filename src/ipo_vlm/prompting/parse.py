"""Validation of the templates an LLM proposed: ``parse_candidates(text, ...) -> ParseResult``.

A pure function that never raises on LLM output: every candidate ends either in ``valid``
(normalised to ``{}``, in the order written, without repeats) or in ``rejected`` with one of
the reasons below, so a run can report why a step produced fewer candidates than asked."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ipo_vlm.prompting.extract import extract, sanitize
from ipo_vlm.prompting.placeholders import LLM_PLACEHOLDER, PLACEHOLDER, normalize_key, template_problem

log = logging.getLogger(__name__)

REASON_ALREADY_SCORED = "already scored"
REASON_REPEATED = "repeated in answer"
REASON_CHECK_FAILED = "check failed"
REASON_TOO_MANY = "too many candidates"
REASON_TOO_MANY_WORDS = "over the word limit"
REASON_QUOTES_SCORE = "quotes a score"

# a score written inside the template ("... behind it (69% accuracy, loss: 0.387). Example: {} ..."):
# the memory's numbers copied (or made up) mid-sentence, which then spread to every later step
_QUOTED_SCORE = re.compile(
    r"\b(?:train(?:ing)?\s+)?(?:accuracy|acc|loss)\b\s*(?:of|is|was|[:=])?\s*\d"
    r"|\d(?:\.\d+)?\s*%?\s*(?:train(?:ing)?\s+)?(?:accuracy|acc|loss)\b",
    re.I,
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|" + re.escape(PLACEHOLDER))

#: a rejected raw candidate is recorded up to this many characters
_RAW_KEEP = 300


@dataclass
class ParseResult:
    """What one LLM answer yielded.

    ``valid``: new templates with ``{}``, in answer order, deduplicated;
    ``rejected``: ``(candidate line as the LLM wrote it, reason)`` pairs;
    ``returned``: how many candidates the answer held (valid + rejected; chatter lines
    do not count)."""

    valid: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    returned: int = 0

    def rejection_counts(self) -> dict[str, int]:
        """How often each rejection reason occurred, in order of first occurrence."""
        return dict(Counter(reason for _, reason in self.rejected))


def parse_candidates(
    text: object,
    placeholder: str = LLM_PLACEHOLDER,
    seen: Collection[str] = frozenset(),
    check: Callable[[str], str | None] | None = None,
    max_chars: int = 300,
    *,
    max_candidates: int = 64,
    max_words: int | None = None,
) -> ParseResult:
    """Extract and validate the templates in an LLM answer.

    ``seen`` holds ``normalize_key`` of every template already scored; ``check`` is called on
    a structurally valid ``{}`` template and returns a rejection reason or None (e.g. the
    VLM's token limit); ``max_chars`` bounds the template length and ``max_words`` its number
    of words (the placeholder counts as one), rejecting longer ones whole, never cutting them;
    a template that writes a score inside it (a number with accuracy or loss) is rejected, since
    fake scores at its end are peeled off by the extraction but a score mid-sentence is not;
    candidates beyond ``max_candidates`` are rejected unexamined so a runaway answer stays cheap."""
    seen_keys = {normalize_key(s) for s in seen}
    answer_keys: set[str] = set()
    result = ParseResult()
    for raw, template in extract(sanitize(text), placeholder):
        result.returned += 1
        if result.returned > max_candidates:
            reason: str | None = REASON_TOO_MANY
        else:
            reason = template_problem(template, max_chars)
        if reason is None and max_words is not None and word_count(template) > max_words:
            reason = REASON_TOO_MANY_WORDS
        if reason is None and _QUOTED_SCORE.search(template):
            reason = REASON_QUOTES_SCORE
        if reason is None:
            key = normalize_key(template)
            if key in seen_keys:
                reason = REASON_ALREADY_SCORED
            elif key in answer_keys:
                reason = REASON_REPEATED
            else:
                answer_keys.add(key)
                reason = _run_check(check, template)
        if reason is None:
            result.valid.append(template)
        else:
            result.rejected.append((_shorten(raw), reason))
    return result


def word_count(template: str) -> int:
    """Words of a template, the placeholder counting as one and punctuation as none ("a photo
    of a {}." has 5, "a {}-shaped thing" 4)."""
    return len(_WORD.findall(template))


def validate_template(template: str, max_chars: int = 300) -> str | None:
    """The rejection reason for a single ``{}`` template, or None when it is usable.

    The same structural rules as ``parse_candidates`` (for templates that come from users)."""
    return template_problem(" ".join(template.split()), max_chars)


def _run_check(check: Callable[[str], str | None] | None, template: str) -> str | None:
    if check is None:
        return None
    try:
        return check(template)
    except Exception:  # a tokenizer choking on odd unicode must not end the run
        log.warning("template check raised on %r; rejecting it", template[:80], exc_info=True)
        return REASON_CHECK_FAILED


def _shorten(raw: str) -> str:
    return raw if len(raw) <= _RAW_KEEP else raw[:_RAW_KEEP] + "…"
