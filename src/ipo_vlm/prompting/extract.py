"""Pulling candidate templates out of whatever an LLM wrote.

Three shapes are recognised, in this order: tags (``<INS>...</INS>``, ``<template>...``),
JSON (an object with a list of templates, or a list, fenced or not), and plain lines
(numbered, bulleted, quoted, in a markdown table ...). Each candidate is cleaned of list
markers, markdown, quotes and trailing fake scores; chatter lines are dropped. Nothing here
decides validity: that is ``parse.parse_candidates``'s job. Every function must survive any
input (hostile, huge, binary), so regular expressions are kept free of nested unbounded
repetition and lines are length-capped before they are cleaned."""

from __future__ import annotations

import json
import re
from typing import Any

from ipo_vlm.prompting.placeholders import PLACEHOLDER, from_llm_placeholder

#: longer answers are cut here before anything else runs (bounds the work on hostile input)
MAX_INPUT_CHARS = 200_000
#: lines longer than this are passed on uncleaned (they are rejected as too long anyway)
LINE_LIMIT = 2_000
#: JSON is only tried at this many places, so a text full of brackets stays cheap
_MAX_JSON_ATTEMPTS = 16
_MAX_JSON_DEPTH = 20
#: trailing fake scores are looked for in this many last characters of a line
_TAIL_WINDOW = 80

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200d\ufeff]")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_TAG = re.compile(
    r"<\s*(ins|template|prompt)\s*>(.*?)(?:<\s*/\s*\1\s*>|(?=<\s*\1\s*>)|$)",
    re.IGNORECASE | re.MULTILINE,
)
_BARE_TAG = re.compile(r"<\s*/?\s*(?:ins|template|prompt)\s*>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_JSON_START = re.compile(r"^[ \t]*[\[{]", re.MULTILINE)
_TEMPLATE_KEYS = ("template", "prompt", "text", "instruction")

_NUM = r"\d{1,6}(?:\.\d{1,6})?\s*%?"
_LABEL = r"(?:(?:train(?:ing)?\s)?(?:accuracy|acc|loss|score|ce|ce\sloss)\s?[:=]?\s?)"
_SEP = r"(?:\||->|=>|→|—|–|-|:|,|;|/)"
# one score: a separator with an optional label, or a label after a space ("... accuracy: 91%")
_SCORE_UNIT = r"(?:\s*" + _SEP + r"\s*" + _LABEL + r"?|\s+" + _LABEL + r")" + _NUM
_TRAIL_SEPARATED = re.compile(r"(?:" + _SCORE_UNIT + r")+\s*[|,;]?\s*$", re.I)
_TRAIL_BRACKETED = re.compile(
    r"\s*[(\[]\s*" + _LABEL + r"?" + _NUM + r"(?:\s*[,;/|]\s*" + _LABEL + r"?" + _NUM + r")*\s*[)\]]\s*$",
    re.I,
)
# the memory's own `template | accuracy | loss` layout copied with made-up cells ("| ? | ?", "| n/a |")
_TRAIL_CELLS = re.compile(r"(?:\s*\|\s*(?:[^|\na-zA-Z]{0,12}|n/?a|tbd|none|unknown)){1,3}\s*$", re.I)
_LEAD_SCORES = re.compile(r"^(?:\s*" + _NUM + r"\s*\|)+\s*")
# a memory row copied with scores and more after them ("a {} at dusk | 84.3 | 0.71 (why it works)"):
# the template is what comes before the first score cell
_SCORE_CELL = re.compile(r"\s*\|\s*\d{1,20}(?:\.\d{1,20})?\s*%?(?![\w.])")
# the placeholder given a value after the template ("a photo of an item. {} = jacket"): not template text
_ASSIGNMENT = re.compile(r"\s*\{\}\s*(?:=|:=|->|=>|→)\s*[^{}|]{0,60}$")
_BULLET = re.compile(
    r"^(?:[-*•+–—>▪◦·]+\s+|\(?\d{1,3}[.):\]](?!\d)\s*|\d{1,3}\s+[-–—]\s+|#\s?\d{1,3}[.:)]?\s+|[a-zA-Z]\)\s+)"
)
# "Template 3:", "Prompt: 'a {} ...'", and the OPRO/IPO answer labels "Instruction:", "text:", "INS:"
_LABEL_PREFIX = re.compile(
    r"^(?:new\s+)?(?:template|prompt|candidate|option|instruction|text|ins)\s*#?\s*\d{0,3}\s*"
    r"(?:[:.)\-–—]\s+|:(?=[\"'“‘«`]))",
    re.I,
)
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`", "„": "“"}
_CHATTER_START = re.compile(
    r"^(?:here\b|sure\b|certainly\b|okay\b|ok\b|of course\b|i\b|i'm\b|i've\b|these\b|this\b|the following\b|"
    r"below\b|note\b|let me\b|hope\b|feel free\b|new templates\b|each\b|all of\b|explanation\b|"
    r"output\b|answer\b|remember\b)",
    re.IGNORECASE,
)
_HEADER = re.compile(
    r"^[\s|#:*\-]*(?:(?:templates?|prompts?|accuracy|acc|loss|score|rank|no\.?)[\s|,:/\-]*)+$", re.I
)
_RULE = re.compile(r"^[\s\-=*_#~|:.]*$")


def sanitize(text: object) -> str:
    """Any LLM output as a bounded ``str`` with control characters removed and ``\\n`` line ends."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text[:MAX_INPUT_CHARS]
    return _CONTROL.sub("", _LINE_BREAKS.sub("\n", text))


def extract(text: str, placeholder: str) -> list[tuple[str, str]]:
    """``(raw, cleaned)`` for each candidate in a sanitized answer; not yet validated.

    Chatter is dropped here; everything returned counts as something the LLM proposed."""
    if _TAG.search(text):
        return _extract_tagged(text, placeholder)
    from_json = _extract_json(text)
    lines = from_json if from_json is not None else text.split("\n")
    out: list[tuple[str, str]] = []
    for line in lines:
        for part in line.split("\n"):
            cleaned = clean_line(part, placeholder)
            if cleaned is not None:
                out.append((part.strip(), cleaned))
    return out


def _extract_tagged(text: str, placeholder: str) -> list[tuple[str, str]]:
    """Tag contents, plus untagged lines that hold a placeholder (models mix both), in order."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        contents = [m.group(2) for m in _TAG.finditer(line)]
        if not contents:
            cleaned = clean_line(_BARE_TAG.sub(" ", line), placeholder)
            if cleaned is not None and PLACEHOLDER in cleaned:
                out.append((line.strip(), cleaned))
            continue
        for content in contents:
            cleaned = clean_line(content, placeholder)
            if cleaned is not None:
                out.append((content.strip(), cleaned))
    return out


def _extract_json(text: str) -> list[str] | None:
    """Strings from the first JSON value in the answer that holds any, else None."""
    attempts = 0
    for m in _FENCE.finditer(text):
        if m.group(1).lower() not in ("", "json"):
            continue
        attempts += 1
        found = _json_strings(m.group(2).strip())
        if found is not None:
            return found
        if attempts >= _MAX_JSON_ATTEMPTS:
            return None
    decoder = json.JSONDecoder()
    for m in _JSON_START.finditer(text):
        attempts += 1
        if attempts > _MAX_JSON_ATTEMPTS:
            break
        try:
            value, _ = decoder.raw_decode(text, m.end() - 1)
        except (ValueError, RecursionError):
            continue
        found = _strings_of(value, 0)
        if found:
            return found
    return None


def _json_strings(blob: str) -> list[str] | None:
    try:
        value = json.loads(blob)
    except (ValueError, RecursionError):
        return None
    found = _strings_of(value, 0)
    return found or None


def _strings_of(value: Any, depth: int) -> list[str]:
    """Templates inside a decoded JSON value; a dict with a ``template``-like key yields only it,
    so explanations stored beside a template are not mistaken for candidates."""
    if depth > _MAX_JSON_DEPTH:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings_of(item, depth + 1)]
    if isinstance(value, dict):
        for key in _TEMPLATE_KEYS:
            if isinstance(value.get(key), str):
                return [value[key]]
        return [s for item in value.values() for s in _strings_of(item, depth + 1)]
    return []


def clean_line(line: str, placeholder: str) -> str | None:
    """One cleaned candidate with the placeholder normalised to ``{}``, or None for chatter."""
    text = " ".join(line.split())
    if len(text) > LINE_LIMIT:
        return text
    if text.startswith("```") or _RULE.match(text):
        return None
    text = from_llm_placeholder(text, placeholder)
    if text.startswith("|"):
        text = _table_cell(text)
    text = text.replace("**", "").replace("`", "")
    for _ in range(6):  # each pass peels one layer (bullet, label, quote, score); stop when stable
        before = text
        text = _peel(text)
        if text == before:
            break
    if not text:
        return ""  # something was written (e.g. '""' or "3."), but no template in it
    if _is_chatter(text):
        return None
    return text


def _peel(text: str) -> str:
    text = _BULLET.sub("", text, count=1)
    text = _LABEL_PREFIX.sub("", text, count=1)
    text = _LEAD_SCORES.sub("", text, count=1)
    cell = _SCORE_CELL.search(text)
    if cell:
        text = text[: cell.start()]
    # Fake scores are short: matching only in the tail keeps end-anchored searches linear.
    head, tail = text[:-_TAIL_WINDOW], text[-_TAIL_WINDOW:]
    for pattern in (_TRAIL_BRACKETED, _TRAIL_SEPARATED, _TRAIL_CELLS, _ASSIGNMENT):
        tail = pattern.sub("", tail, count=1)
    text = head + tail
    text = text.strip()
    if text[:1] in _QUOTES and text.endswith(","):
        text = text[:-1].rstrip()  # a JSON-ish list line: "a photo of a {}",
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "*_":
        text = text.strip(text[0]).strip()  # markdown emphasis around the whole template
    return text


def _table_cell(row: str) -> str:
    """A markdown table row reduced to its template cell (the one with the placeholder)."""
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    for cell in cells:
        if PLACEHOLDER in cell:
            return cell
    for cell in cells:
        if cell and not re.fullmatch(_NUM, cell):
            return cell
    return ""


def _is_chatter(text: str) -> bool:
    if not text or text.endswith(":") or _RULE.match(text) or _HEADER.match(text):
        return True
    # A line that holds the placeholder is a candidate even if it opens like a sentence
    # ("here is a {}"), because it may well be one.
    return PLACEHOLDER not in text and bool(_CHATTER_START.match(text))
