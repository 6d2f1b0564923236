"""Reflection on errors: what the best template so far gets wrong on the training images, told
to the LLM through the images' (masked) descriptions and the most confused class pairs — the
kind of feedback a random sampler cannot use. Pure text logic; the run computes the errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import ipo_vlm.prompting.text as T

#: confused class pairs shown (as counts, or named when the run allows class names)
PAIRS_SHOWN = 3


@dataclass(frozen=True)
class Reflection:
    """The errors of one template on the training images.

    ``descriptions``: masked descriptions of misclassified images, most shared first, each with
    how many of the misclassified images share it; ``pairs``: (true class, predicted class,
    images), most frequent first; class names are shown only when ``named``."""

    total: int
    wrong: int
    descriptions: tuple[tuple[str, int], ...] = ()
    pairs: tuple[tuple[str, str, int], ...] = ()
    named: bool = False


def reflect(truth: Sequence[int], predicted: Sequence[int], descriptions: Sequence[str], classnames: Sequence[str],
            k: int, named: bool = False) -> Reflection:
    """The :class:`Reflection` of one template's predictions; ``descriptions`` are aligned with
    the images (empty strings or a shorter list: those images have none); up to ``k`` distinct
    descriptions are kept."""
    wrong = [i for i, (t, p) in enumerate(zip(truth, predicted)) if t != p]
    texts = Counter(descriptions[i] for i in wrong if i < len(descriptions) and descriptions[i])
    pairs = Counter((classnames[truth[i]], classnames[predicted[i]]) for i in wrong)
    return Reflection(
        total=len(truth), wrong=len(wrong), descriptions=tuple(texts.most_common(k)),
        pairs=tuple((a, b, n) for (a, b), n in pairs.most_common(PAIRS_SHOWN)), named=named,
    )


def render_reflection(r: Reflection) -> str:
    """The meta-prompt block for ``r`` (class names only when ``r.named``)."""
    if r.wrong == 0:
        return T.REFLECT_NONE
    lines = [T.REFLECT_HEADER.replace("{wrong}", str(r.wrong)).replace("{total}", str(r.total))]
    lines += [f"- {' '.join(text.split())}" + (f" ({n} of them)" if n > 1 else "") for text, n in r.descriptions]
    if r.pairs:
        if r.named:
            listed = "; ".join(f"{a} taken for {b} ({n})" for a, b, n in r.pairs)
            lines.append(T.REFLECT_PAIRS.replace("{pairs}", listed))
        else:
            counts = ", ".join(str(n) for _, _, n in r.pairs)
            lines.append(T.REFLECT_PAIRS_COUNTS.replace("{counts}", counts).replace("{wrong}", str(r.wrong)))
    return "\n".join(lines)
