"""A reader for the GBNF subset the output grammars use, translated to a Python regex, so that
tests check the grammar *text* against strings (accepted or not) without a model.

Supported: one rule per line (``name ::= body``), string literals with ``\\n``, ``\\"`` and
``\\\\`` escapes, character classes, rule references, groups, ``|``, ``?``, ``*``, ``+`` and
``{m,n}``. Rules must not be recursive (every output grammar is a finite, regular language)."""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r'\s*(?:(?P<lit>"(?:\\.|[^"\\])*")|(?P<cls>\[(?:\\.|[^\]\\])*\])|(?P<name>[A-Za-z][A-Za-z0-9_-]*)'
    r"|(?P<rep>\{\d*(?:,\d*)?\})|(?P<op>[()|?*+]))"
)


def _literal(token: str) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "\\":
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return re.escape("".join(out))


def _char_class(token: str) -> str:
    # GBNF and Python agree on [...] with backslash escapes; only a literal "\n" needs mapping.
    return token.replace("\\n", "\n")


def _tokens(body: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    body = body.strip()
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read grammar at {body[pos:pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(body) and body[pos] == " ":
            pos += 1
    return out


def gbnf_to_regex(grammar: str, start: str = "root") -> re.Pattern[str]:
    """The language of ``grammar`` (from ``start``) as a compiled regex for ``fullmatch``."""
    rules: dict[str, str] = {}
    for line in grammar.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, body = line.split("::=", 1)
            rules[name.strip()] = body
    done: dict[str, str] = {}

    def rule(name: str, stack: tuple[str, ...]) -> str:
        if name in stack:
            raise ValueError(f"recursive rule {name}")
        if name not in done:
            done[name] = "(?:" + expr(_tokens(rules[name]), stack + (name,)) + ")"
        return done[name]

    def expr(tokens: list[tuple[str, str]], stack: tuple[str, ...]) -> str:
        alternatives: list[str] = []
        seq: list[str] = []
        i = 0
        while i < len(tokens):
            kind, text = tokens[i]
            if kind == "op" and text == "|":
                alternatives.append("".join(seq))
                seq = []
            elif kind == "op" and text == "(":
                depth, j = 1, i + 1
                while depth:
                    depth += {"(": 1, ")": -1}.get(tokens[j][1], 0) if tokens[j][0] == "op" else 0
                    j += 1
                seq.append("(?:" + expr(tokens[i + 1 : j - 1], stack) + ")")
                i = j - 1
            elif kind == "op":  # ? * +
                seq[-1] = "(?:" + seq[-1] + ")" + text
            elif kind == "rep":
                seq[-1] = "(?:" + seq[-1] + ")" + text
            elif kind == "lit":
                seq.append(_literal(text))
            elif kind == "cls":
                seq.append(_char_class(text))
            else:
                seq.append(rule(text, stack))
            i += 1
        alternatives.append("".join(seq))
        return "|".join(alternatives)

    return re.compile(rule(start, ()), re.DOTALL)
