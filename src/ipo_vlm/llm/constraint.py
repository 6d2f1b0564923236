"""Turn an ``OutputConstraint`` into what a backend understands: a GBNF grammar for llama.cpp,
a ``response_format`` for OpenAI-compatible servers.

The grammar admits exactly ``n`` numbered lines, each a template holding the placeholder exactly
once. Its length bound sits at the parser's own limit (``max_chars`` on each side of the
placeholder): a cap below it once cut templates mid-word into accepted candidates; at the limit,
a cut line is always rejected, and a runaway line cannot eat a whole call's token budget."""

from __future__ import annotations

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


def template_grammar(constraint: OutputConstraint) -> str:
    """GBNF text: ``n`` numbered, newline-terminated lines ``k. text <placeholder> text``.

    Text around the placeholder cannot contain a newline or the placeholder's first character,
    which makes a second placeholder impossible. The numbers are written by the grammar itself:
    a model that is forbidden to number its lines invents its own enumerators instead (seen:
    "b photo of a ...", "c photo of a ..."), while "1. " costs nothing and the parser strips it.
    A template may not open with a list marker, a digit or a space after the number.

    A line may end in several newlines: Qwen-style vocabularies hold "\\n\\n" as one token, and a
    grammar that masks it leaves the model nothing to end its last line with but more words
    (seen: a third template running on for 400 tokens of commentary)."""
    ph = constraint.placeholder
    if not ph:
        raise ConfigError("the output constraint needs a non-empty placeholder")
    if constraint.n < 1:
        raise ConfigError(f"the output constraint needs n >= 1, got {constraint.n}")
    first = _gbnf_char(ph[0])
    # Each side of the placeholder may run to max_chars: a line the cap cuts is then always over
    # max_chars and rejected by the parser, never accepted as a truncated template, while a
    # runaway line costs ~max_chars/4 tokens instead of the whole max_tokens.
    cap = max(1, constraint.max_chars)
    lines = " ".join(f'"{k}. " line' for k in range(1, constraint.n + 1))
    return "\n".join(
        [
            f"root ::= {lines}",
            f"line ::= head? {_gbnf_literal(ph)} tail \"\\n\"+",
            f"head ::= [^\\n{first}\\-*#0-9 \\t] [^\\n{first}]{{0,{cap - 1}}}",
            f"tail ::= [^\\n{first}]{{0,{cap}}}",
            "",
        ]
    )


def templates_json_schema(constraint: OutputConstraint) -> dict[str, Any]:
    """JSON schema of ``{"templates": [str, ...]}`` (strict-mode compatible: no length bounds)."""
    return {
        "type": "object",
        "properties": {
            "templates": {
                "type": "array",
                "description": f"exactly {constraint.n} prompt templates, each containing {constraint.placeholder} once",
                "items": {"type": "string"},
            }
        },
        "required": ["templates"],
        "additionalProperties": False,
    }


def response_format(constraint: OutputConstraint | None, style: str) -> dict[str, Any] | None:
    """The ``response_format`` argument for a chat completion, or ``None`` for no constraint.

    ``json_schema``: OpenAI structured outputs. ``json_object``: the form some local servers
    (llama.cpp server) accept, a JSON object with the schema beside it. ``none``: plain text."""
    if style not in RESPONSE_FORMATS:
        raise ConfigError(f"unknown response_format {style!r}; known: {', '.join(RESPONSE_FORMATS)}")
    if constraint is None or style == "none":
        return None
    schema = templates_json_schema(constraint)
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "templates", "strict": True, "schema": schema}}
    return {"type": "json_object", "schema": schema}
