"""Template banks: the random-search control's candidates, and CLIP's 80 ImageNet templates.

A bank is JSON data (``assets/template_bank.json``): ``patterns`` holding the class placeholder
``{}`` exactly once plus ``{slot}`` markers, and ``slots`` mapping each marker to phrase parts
along the dimensions the meta-prompt asks the LLM to vary (style, viewpoint, background,
material, setting, lighting, quality). ``{domain}`` is the dataset's domain word ("pet",
"satellite image"); a bank never holds class names, so a random template carries no more
knowledge of the classes than the LLM's prompt does. Markers are filled by plain replacement.

Sampling picks a pattern uniformly, then each slot's phrase uniformly: the long patterns would
otherwise crowd out the short ones, which hold most of the structural variety."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from math import prod
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import PLACEHOLDER, normalize_key

BANK_FORMAT = "ipo-template-bank-1"
DOMAIN_SLOT = "domain"
_MARKER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: draws per requested template before sampling switches to enumerating what is left
_ATTEMPTS_PER_TEMPLATE = 50


def _asset(name: str) -> Path:
    return Path(str(resources.files("ipo_vlm") / "assets" / name))


def _stray_braces(text: str) -> bool:
    """True when ``text`` holds a brace outside ``{}`` and ``{name}`` markers."""
    rest = _MARKER.sub("", text.replace(PLACEHOLDER, ""))
    return "{" in rest or "}" in rest


@dataclass(frozen=True)
class _Pattern:
    text: str
    slots: tuple[str, ...]  # slot names in order of first appearance, without ``domain``


class TemplateBank:
    """Patterns and phrase slots; ``sample`` draws distinct templates for one domain word."""

    def __init__(self, patterns: Sequence[str], slots: dict[str, Sequence[str]], source: str = "<bank>") -> None:
        self.source = source
        self.slots = {name: tuple(values) for name, values in slots.items()}
        self.patterns = tuple(self._pattern(p) for p in patterns)
        self._validate()
        self._enumerated: dict[str, list[str]] = {}

    # -- loading -----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None, extra: str | Path | Iterable[str | Path] | None = None) -> "TemplateBank":
        """The bank at ``path`` (default: the shipped one), extended by the user's ``extra``
        file(s) of the same shape: their patterns are added, and their slot phrases are added
        to the slots of the same name (new slots are created)."""
        base = Path(path) if path is not None else _asset("template_bank.json")
        patterns, slots = _read_bank(base)
        sources = [str(base)]
        extras = [] if extra is None else [extra] if isinstance(extra, (str, Path)) else list(extra)
        for e in extras:
            more_patterns, more_slots = _read_bank(Path(e))
            patterns += more_patterns
            for name, values in more_slots.items():
                slots[name] = list(dict.fromkeys([*slots.get(name, []), *values]))
            sources.append(str(e))
        return cls(patterns, slots, source=" + ".join(sources))

    def _pattern(self, text: str) -> _Pattern:
        names = [m for m in _MARKER.findall(text) if m != DOMAIN_SLOT]
        return _Pattern(text, tuple(dict.fromkeys(names)))

    def _validate(self) -> None:
        where = f"template bank {self.source}"
        if not self.patterns:
            raise ConfigError(f"{where}: no patterns")
        for name, values in self.slots.items():
            if not values:
                raise ConfigError(f"{where}: slot {name!r} has no phrases")
            for v in values:
                if PLACEHOLDER in v or _stray_braces(v) or any(m != DOMAIN_SLOT for m in _MARKER.findall(v)):
                    raise ConfigError(f"{where}: slot {name!r} phrase {v!r} may hold no braces other than {{domain}}")
        for i, p in enumerate(self.patterns):
            count = p.text.count(PLACEHOLDER)
            if count != 1:
                raise ConfigError(f"{where}: pattern {i + 1} {p.text!r} holds the class placeholder {{}} {count} times, not once")
            if _stray_braces(p.text):
                raise ConfigError(f"{where}: pattern {i + 1} {p.text!r} has a stray brace")
            unknown = [s for s in p.slots if s not in self.slots]
            if unknown:
                raise ConfigError(f"{where}: pattern {i + 1} {p.text!r} uses unknown slot {unknown[0]!r}; known: {', '.join(sorted(self.slots))}")

    # -- composing ---------------------------------------------------------------------------

    def combinations(self) -> int:
        """How many (pattern, phrase, ...) combinations the bank holds, duplicates included."""
        return sum(prod(len(self.slots[s]) for s in p.slots) for p in self.patterns)

    def _compose(self, pattern: _Pattern, choice: dict[str, str], domain: str) -> str:
        text = pattern.text
        for name in pattern.slots:
            text = text.replace("{" + name + "}", choice[name])
        return text.replace("{" + DOMAIN_SLOT + "}", domain)

    def _draw(self, rng: random.Random, domain: str) -> str:
        pattern = self.patterns[rng.randrange(len(self.patterns))]
        choice = {name: self.slots[name][rng.randrange(len(self.slots[name]))] for name in pattern.slots}
        return self._compose(pattern, choice, domain)

    def _all(self, domain: str) -> list[str]:
        """Every composed template once per normalised key, in bank order (kept per domain)."""
        from itertools import product

        if domain in self._enumerated:
            return self._enumerated[domain]
        out: dict[str, str] = {}
        for p in self.patterns:
            for values in product(*(self.slots[s] for s in p.slots)):
                t = self._compose(p, dict(zip(p.slots, values)), domain)
                out.setdefault(normalize_key(t), t)
        self._enumerated[domain] = list(out.values())
        return self._enumerated[domain]

    def size(self, domain: str) -> int:
        """Distinct templates (by normalised key) the bank composes for ``domain``."""
        return len(self._all(_check_domain(domain)))

    def sample(self, n: int, rng: random.Random, domain: str, exclude: Iterable[str] = ()) -> list[str]:
        """``n`` templates for ``domain``, none sharing a normalised key with each other or with
        ``exclude`` (templates or keys). Deterministic for a given ``rng`` state. Returns fewer
        than ``n`` only when the bank has no more distinct templates."""
        if n < 0:
            raise ValueError("n must be >= 0")
        domain = _check_domain(domain)
        seen = {normalize_key(t) for t in exclude}
        out: list[str] = []
        for _ in range(_ATTEMPTS_PER_TEMPLATE * n):
            if len(out) >= n:
                return out
            t = self._draw(rng, domain)
            key = normalize_key(t)
            if key not in seen:
                seen.add(key)
                out.append(t)
        if len(out) < n:  # nearly exhausted: draw from what is left instead of by rejection
            rest = [t for t in self._all(domain) if normalize_key(t) not in seen]  # a copy: shuffled below
            rng.shuffle(rest)
            out += rest[: n - len(out)]
        return out


def _check_domain(domain: str) -> str:
    domain = " ".join(str(domain).split())
    if not domain:
        raise ConfigError("the template bank needs a domain word (e.g. 'object'), got an empty one")
    if "{" in domain or "}" in domain:
        raise ConfigError(f"domain word {domain!r} may not contain braces")
    return domain


def _read_bank(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Patterns and slots of one bank file; any defect is one ``ConfigError`` line."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"template bank not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read template bank {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"template bank {path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"template bank {path} must be a JSON object with 'patterns' and 'slots'")
    fmt = raw.get("format", BANK_FORMAT)
    if fmt != BANK_FORMAT:
        raise ConfigError(f"template bank {path} has format {fmt!r}; expected {BANK_FORMAT!r}")
    patterns = raw.get("patterns", [])
    slots = raw.get("slots", {})
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"template bank {path}: 'patterns' must be a list of strings")
    if not isinstance(slots, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in slots.items()
    ):
        raise ConfigError(f"template bank {path}: 'slots' must map names to lists of strings")
    if DOMAIN_SLOT in slots:
        raise ConfigError(f"template bank {path}: '{DOMAIN_SLOT}' is filled from the dataset and cannot be a slot")
    return list(patterns), {k: list(v) for k, v in slots.items()}


@lru_cache(maxsize=1)
def _clip_templates() -> tuple[str, ...]:
    path = _asset("clip_imagenet_templates.txt")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return tuple(line for line in lines if line and not line.startswith("#"))


def clip_imagenet_templates() -> list[str]:
    """The 80 prompt templates CLIP published for ImageNet zero-shot classification (MIT
    licence; the asset file names the source), each with ``{}`` once."""
    return list(_clip_templates())
