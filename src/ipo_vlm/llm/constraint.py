"""Turn an ``OutputConstraint`` into what a backend understands: a GBNF grammar for llama.cpp,
a ``response_format`` for OpenAI-compatible servers.

The grammar admits exactly ``n`` numbered lines, each a template holding the placeholder exactly
once. With a word limit (``max_words``) it counts words the way the parser does
(``prompting.parse.word_count``), so every line it admits is within the limit and nothing the
model writes is wasted on a line the run then rejects. Without one, each side of the
placeholder is bounded by ``max_chars``, the parser's own limit: a cut line is always rejected,
and a runaway line cannot eat a whole call's token budget."""

from __future__ import annotations

import re
import string
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.llm.base import OutputConstraint

#: ``response_format`` styles an OpenAI-compatible backend can be told to use
RESPONSE_FORMATS = ("json_schema", "json_object", "none")


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _gbnf_char(ch: str) -> str:
    """One character escaped for use inside a GBNF ``[...]`` class."""
    if ch in "\\]^-[":
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    return ch


#: characters of a word in a word-limited template: ASCII letters and digits (what CLIP's
#: vocabulary is mostly made of); an apostrophe may join two runs of them ("dog's")
WORD_CHARS = string.ascii_letters + string.digits
#: characters between words: none of them belongs to a word for ``word_count``
SEPARATOR_CHARS = ' ,.;:!?"()/&+-'
#: characters that may open a template before its first word or the placeholder
OPENING_CHARS = '"('
#: a run of word characters, and a run of separators, is at most this long
MAX_WORD_CHARS = 16
MAX_SEPARATOR_CHARS = 4


def _char_class(chars: str, exclude: str = "") -> str:
    """A GBNF ``[...]`` class of ``chars`` minus ``exclude``, runs of three or more written as ranges."""
    codes = sorted({ord(c) for c in chars} - {ord(c) for c in exclude})
    if not codes:
        raise ConfigError("the placeholder leaves no characters to write templates with")
    parts: list[str] = []
    start = prev = codes[0]
    for code in [*codes[1:], None]:
        if code is not None and code == prev + 1:
            prev = code
            continue
        if prev - start >= 2:
            parts.append(f"{_gbnf_char(chr(start))}-{_gbnf_char(chr(prev))}")
        else:
            parts.extend(_gbnf_char(chr(c)) for c in range(start, prev + 1))
        if code is not None:
            start = prev = code
    return "[" + "".join(parts) + "]"


def _check(constraint: OutputConstraint) -> None:
    if not constraint.placeholder:
        raise ConfigError("the output constraint needs a non-empty placeholder")
    if constraint.n < 1:
        raise ConfigError(f"the output constraint needs n >= 1, got {constraint.n}")
    if constraint.max_words is not None and constraint.max_words < 1:
        raise ConfigError(f"the output constraint needs max_words >= 1, got {constraint.max_words}")


def template_grammar(constraint: OutputConstraint) -> str:
    """GBNF text for the whole answer: ``n`` numbered, newline-terminated lines, each one template
    with the placeholder exactly once (:func:`word_limited_grammar` when ``max_words`` is set).
    """
    _check(constraint)
    if constraint.max_words is not None:
        return word_limited_grammar(constraint)
    return char_limited_grammar(constraint)


def _root(n: int) -> str:
    lines = " ".join(f'"{k}. " line' for k in range(1, n + 1))
    return f"root ::= {lines}"


def word_limited_grammar(constraint: OutputConstraint) -> str:
    """GBNF: ``n`` numbered lines, each a template of at most ``max_words`` words, the placeholder
    exactly once and counting as one word.

    A word is a run of letters and digits (at most ``MAX_WORD_CHARS``), optionally joined by an
    apostrophe to a second run; words are parted by one to ``MAX_SEPARATOR_CHARS`` separators
    (space and ASCII punctuation, never the placeholder's first character, a brace, ``|`` or a
    list marker). The count is exact, not an estimate: ``prompting.parse.word_count`` counts any
    line the grammar admits as the grammar did. Rules ``a<j>`` hold the line before the
    placeholder with ``j`` words still allowed, ``b<j>``/``c<j>`` the line after it (which may
    open with an apostrophe: "<CLASS>'s fur" is three words, as the parser counts). A template
    opens with a letter, the placeholder, a quote or a bracket, never a digit or a second list
    marker. Lines end in one or more newlines (see :func:`char_limited_grammar`)."""
    ph = constraint.placeholder
    words = int(constraint.max_words or 1)
    no = ph[0] + "{}|"
    wc, letter = _char_class(WORD_CHARS, no), _char_class(string.ascii_letters, no)
    sep, opening = _char_class(SEPARATOR_CHARS, no), _char_class(OPENING_CHARS, no)
    w, s = MAX_WORD_CHARS, MAX_SEPARATOR_CHARS
    rules = [
        _root(constraint.n),
        f"line ::= opening? a{words} \"\\n\"+",
        f"opening ::= {opening}",
        f"ph ::= {_gbnf_literal(ph)}",
        f"word ::= wc{{1,{w}}} (\"'\" wc{{1,{w}}})?",
        f"first ::= {letter} wc{{0,{w - 1}}} (\"'\" wc{{1,{w}}})?",
        f"wc ::= {wc}",
        f"sep ::= {sep}",
        "a1 ::= ph b0",
        f"b0 ::= sep{{0,{s}}}",
        f"c0 ::= sep{{0,{s}}}",
    ]
    for j in range(2, words + 1):
        word = "first" if j == words else "word"
        rules.append(f"a{j} ::= ph b{j - 1} | {word} sep{{1,{s}}} a{j - 1}")
    for j in range(1, words):
        rules.append(f"b{j} ::= (\"'\" | sep{{0,{s}}}) (word c{j - 1})?")
        rules.append(f"c{j} ::= sep{{1,{s}}} word c{j - 1} | sep{{0,{s}}}")
    return "\n".join(rules) + "\n"


def char_limited_grammar(constraint: OutputConstraint) -> str:
    """GBNF text: ``n`` numbered, newline-terminated lines ``k. text <placeholder> text``.

    Text around the placeholder cannot contain a newline or the placeholder's first character,
    which makes a second placeholder impossible. The numbers are written by the grammar itself:
    a model that is forbidden to number its lines invents its own enumerators instead (seen:
    "b photo of a ...", "c photo of a ..."), while "1. " costs nothing and the parser strips it.
    A template may not open with a list marker, a digit or a space after the number.

    A line may end in several newlines: Qwen-style vocabularies hold "\\n\\n" as one token, and a
    grammar that masks it leaves the model nothing to end its last line with but more words
    (seen: a third template running on for 400 tokens of commentary)."""
    _check(constraint)
    ph = constraint.placeholder
    first = _gbnf_char(ph[0])
    # Each side of the placeholder may run to max_chars: a line the cap cuts is then always over
    # max_chars and rejected by the parser, never accepted as a truncated template, while a
    # runaway line costs ~max_chars/4 tokens instead of the whole max_tokens.
    cap = max(1, constraint.max_chars)
    return "\n".join(
        [
            _root(constraint.n),
            f"line ::= head? {_gbnf_literal(ph)} tail \"\\n\"+",
            f"head ::= [^\\n{first}\\-*#0-9 \\t] [^\\n{first}]{{0,{cap - 1}}}",
            f"tail ::= [^\\n{first}]{{0,{cap}}}",
            "",
        ]
    )


def template_pattern(constraint: OutputConstraint) -> str:
    """A regular expression for one template of the word-limited grammar (no number, no
    newline, no double quote: it sits inside a JSON string), for servers that turn a JSON
    schema's ``pattern`` into a grammar (llama.cpp's do; their converter takes plain groups only)."""
    _check(constraint)
    words = int(constraint.max_words or 1)
    no = constraint.placeholder[0] + '{}|"'
    wc = _char_class(WORD_CHARS, no)
    sep = _char_class(SEPARATOR_CHARS, no) + f"{{1,{MAX_SEPARATOR_CHARS}}}"
    word = f"{wc}{{1,{MAX_WORD_CHARS}}}('{wc}{{1,{MAX_WORD_CHARS}}})?"
    first = f"{_char_class(string.ascii_letters, no)}{wc}{{0,{MAX_WORD_CHARS - 1}}}('{wc}{{1,{MAX_WORD_CHARS}}})?"
    ph = re.escape(constraint.placeholder)
    trail = sep.replace("{1,", "{0,")
    alternatives = []
    for before in range(words):
        head = "" if before == 0 else first + sep + (f"({word}{sep}){{{before - 1}}}" if before > 1 else "")
        after = words - 1 - before
        tail = trail if after == 0 else (
            f"('|{trail})({word}({sep}{word}){{0,{after - 1}}}{trail})?")
        alternatives.append(head + ph + tail)
    return "^\\(?(" + "|".join(alternatives) + ")$"


def templates_json_schema(constraint: OutputConstraint, bounded: bool = False) -> dict[str, Any]:
    """JSON schema of ``{"templates": [str, ...]}``. Plain, it is strict-mode compatible (no
    bounds); ``bounded`` adds exactly ``n`` items and, with a word limit, each item's pattern."""
    items: dict[str, Any] = {"type": "string"}
    templates: dict[str, Any] = {
        "type": "array",
        "description": f"exactly {constraint.n} prompt templates, each containing {constraint.placeholder} once",
        "items": items,
    }
    if bounded:
        templates["minItems"] = templates["maxItems"] = constraint.n
        if constraint.max_words is not None:
            items["pattern"] = template_pattern(constraint)
    return {
        "type": "object",
        "properties": {"templates": templates},
        "required": ["templates"],
        "additionalProperties": False,
    }


def response_format(constraint: OutputConstraint | None, style: str) -> dict[str, Any] | None:
    """The ``response_format`` argument for a chat completion, or ``None`` for no constraint.

    ``json_schema``: OpenAI structured outputs (a strict schema without bounds, as every such
    server takes it). ``json_object``: the form llama.cpp's servers accept, a JSON object with
    the schema beside it, bounded (they turn it into a grammar). ``none``: plain text."""
    if style not in RESPONSE_FORMATS:
        raise ConfigError(f"unknown response_format {style!r}; known: {', '.join(RESPONSE_FORMATS)}")
    if constraint is None or style == "none":
        return None
    if style == "json_schema":
        schema = templates_json_schema(constraint)
        return {"type": "json_schema", "json_schema": {"name": "templates", "strict": True, "schema": schema}}
    return {"type": "json_object", "schema": templates_json_schema(constraint, bounded=True)}
