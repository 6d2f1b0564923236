"""The attribute vocabulary that the ``interrogate`` captioner ranks.

A vocabulary is JSON: ``{"prompt": "a photo of something {}", "sentence": "...", "groups":
{"colour": ["mostly red", ...], ...}}``. ``prompt`` is the text the VLM encodes for a phrase and
``sentence`` the description built from the chosen phrases (both with ``{}`` filled by plain
replacement). Simpler shapes are accepted too: a mapping of group -> phrases, or a flat list.

Where the phrases come from (first match wins):
1. a vocabulary passed explicitly (a path or an already parsed mapping);
2. the VLM's own ``attribute_vocabulary`` attribute (a path or mapping), when it has one: a model
   trained on a closed set of attribute words knows best what it can tell apart;
3. the packaged ``assets/attributes.json``, merged with the demo VLM's
   ``assets/demo_vlm/attributes.json`` when that file exists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError

DEFAULT_PROMPT = "{}"
DEFAULT_SENTENCE = "{}."


@dataclass(frozen=True)
class AttributeGroup:
    """Alternative phrases for one visual property; at most one of them describes an image."""

    name: str
    phrases: tuple[str, ...]
    #: the text encoded for a phrase; ``{}`` is the phrase
    prompt: str = DEFAULT_PROMPT


@dataclass(frozen=True)
class Vocabulary:
    groups: tuple[AttributeGroup, ...]
    #: how chosen phrases become a description; ``{}`` is the comma-joined phrases
    sentence: str = DEFAULT_SENTENCE

    def as_dict(self) -> dict[str, Any]:
        """Canonical form, hashed into the captioner's cache identity."""
        return {"sentence": self.sentence,
                "groups": [{"name": g.name, "prompt": g.prompt, "phrases": list(g.phrases)} for g in self.groups]}


def _asset(*parts: str) -> Path:
    return Path(str(resources.files("ipo_vlm").joinpath("assets", *parts)))


def packaged_vocabulary_path() -> Path:
    return _asset("attributes.json")


def demo_vocabulary_path() -> Path:
    return _asset("demo_vlm", "attributes.json")


def _read(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"cannot read attribute vocabulary {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"attribute vocabulary {path} is not valid JSON: {e}") from None


def _phrases(values: Any, where: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ConfigError(f"attribute vocabulary {where}: expected a list of phrases")
    phrases = tuple(dict.fromkeys(" ".join(str(v).split()) for v in values if str(v).strip()))
    if not phrases:
        raise ConfigError(f"attribute vocabulary {where}: no phrases")
    return phrases


def parse_vocabulary(raw: Any, where: str = "vocabulary") -> Vocabulary:
    """A ``Vocabulary`` from any accepted JSON shape; ``ConfigError`` naming ``where`` if invalid."""
    prompt, sentence = DEFAULT_PROMPT, DEFAULT_SENTENCE
    if isinstance(raw, Mapping) and ("groups" in raw or "phrases" in raw):
        prompt = str(raw.get("prompt", prompt))
        sentence = str(raw.get("sentence", sentence))
        groups_raw = raw.get("groups") if "groups" in raw else {"attributes": raw["phrases"]}
    elif isinstance(raw, (list, tuple)):
        groups_raw = {"attributes": raw}
    else:
        groups_raw = raw
    if not isinstance(groups_raw, Mapping) or not groups_raw:
        raise ConfigError(f"{where}: expected attribute groups (a mapping of group name to phrases)")
    if "{}" not in prompt:
        raise ConfigError(f"{where}: 'prompt' must contain {{}} for the phrase")
    if "{}" not in sentence:
        raise ConfigError(f"{where}: 'sentence' must contain {{}} for the phrases")
    groups = tuple(AttributeGroup(str(name), _phrases(values, f"{where}, group {name!r}"), prompt)
                   for name, values in groups_raw.items())
    return Vocabulary(groups, sentence)


def _load(source: str | Path | Mapping[str, Any] | list[Any], where: str | None = None) -> Vocabulary:
    if isinstance(source, (str, Path)):
        return parse_vocabulary(_read(source), where or str(source))
    return parse_vocabulary(source, where or "vocabulary")


def merge(base: Vocabulary, extra: Vocabulary, prefix: str) -> Vocabulary:
    """``base`` plus the groups of ``extra`` (renamed ``prefix:name`` where names collide)."""
    names = {g.name for g in base.groups}
    added = tuple(AttributeGroup(f"{prefix}:{g.name}" if g.name in names else g.name, g.phrases, g.prompt)
                  for g in extra.groups)
    return Vocabulary(base.groups + added, base.sentence)


def load_vocabulary(source: str | Path | Mapping[str, Any] | None = None, vlm: Any = None) -> Vocabulary:
    """The vocabulary for a run; see the module docstring for the order of precedence."""
    if source is not None and source != "":
        return _load(source)
    advertised = getattr(vlm, "attribute_vocabulary", None) if vlm is not None else None
    if advertised:
        return _load(advertised, f"the VLM's attribute vocabulary ({getattr(vlm, 'model_id', '?')})")
    vocab = _load(packaged_vocabulary_path())
    demo = demo_vocabulary_path()
    if demo.is_file():
        vocab = merge(vocab, _load(demo), "demo")
    return vocab
