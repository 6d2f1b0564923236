"""Which templates an ablation scores: pure text logic, no model.

A template is split into words on whitespace. The word that holds the ``{}`` placeholder
(``{}.`` in ``a photo of a {}.``) is never removed, so every ablated template still names the
class; a span of 2-3 words is only considered when it does not cross that word."""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "{}"


@dataclass(frozen=True)
class Ablation:
    """Words ``start``..``end`` (exclusive) removed from the template's word list."""

    start: int
    end: int
    removed: str
    template: str

    @property
    def kind(self) -> str:
        return "word" if self.end - self.start == 1 else "phrase"


def split_words(template: str) -> list[str]:
    """The template's words, in order (runs of whitespace separate words)."""
    return template.split()


def placeholder_index(words: list[str]) -> int:
    """Index of the word holding the placeholder; ValueError when there is none."""
    for i, w in enumerate(words):
        if PLACEHOLDER in w:
            return i
    raise ValueError("no word holds the placeholder")


def ablations(template: str, max_span: int = 1) -> list[Ablation]:
    """Every removal of 1..``max_span`` contiguous words that leaves the placeholder's word,
    in order of span length, then position. Removing words only shortens a template, so each
    ablation stays within the text encoder's token limit whenever the full template does."""
    if max_span < 1:
        raise ValueError(f"max_span must be >= 1, got {max_span}")
    words = split_words(template)
    keep = placeholder_index(words)
    out: list[Ablation] = []
    for span in range(1, max_span + 1):
        for start in range(len(words) - span + 1):
            end = start + span
            if start <= keep < end:
                continue
            out.append(Ablation(start, end, " ".join(words[start:end]), " ".join(words[:start] + words[end:])))
    return out
