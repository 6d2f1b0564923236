"""Image descriptions for the meta-prompt: compute (cached), mask class names, fit a budget.

The optimizer's use::

    instruction = description_instruction(dataset.info.domain)
    descs = describe_samples(captioner, dataset, samples, instruction, classnames,
                             out_path=run_dir / "descriptions.jsonl")
    texts = select_for_prompt(descs, budget_tokens=600, selection="round_robin")

Only masked text leaves this module: the run file and the meta-prompt never see a class name
that the captioner wrote."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ipo_vlm.captioner.cache import CaptionCache, caption_key
from ipo_vlm.captioner.masking import mask_classnames
from ipo_vlm.errors import BackendError, ConfigError
from ipo_vlm.io.jsonio import atomic_write_bytes, read_jsonl

if TYPE_CHECKING:
    from ipo_vlm.captioner.base import Captioner
    from ipo_vlm.data.base import Dataset, Sample

log = logging.getLogger(__name__)

#: the request sent to a multimodal captioner; ``<DOMAIN>`` is filled from the dataset
DESCRIPTION_INSTRUCTION = (
    "Describe the <DOMAIN> in this image in one or two sentences: its colours, shapes, textures "
    "and materials, the setting and the viewpoint. Do not say which specific kind of <DOMAIN> it is."
)
SELECTIONS = ("round_robin", "first")

__all__ = [
    "DESCRIPTION_INSTRUCTION", "Description", "DescriptionSet", "approx_tokens", "describe_samples",
    "description_instruction", "mask_classnames", "read_descriptions", "select_for_prompt",
]


@dataclass(frozen=True)
class Description:
    """One training image's description, already masked."""

    ref: str
    label: int
    classname: str
    text: str
    #: how many class-name mentions were replaced in ``text``
    masked: int


@dataclass(frozen=True)
class DescriptionSet:
    items: list[Description] = field(default_factory=list)
    #: class-name mentions replaced, over all items
    maskings: int = 0
    #: descriptions served from the cache / computed by the captioner in this call
    hits: int = 0
    computed: int = 0
    model_id: str = "none"


def description_instruction(domain: str) -> str:
    """The captioner's instruction for images of ``domain`` ("pet", "clothing item", ...)."""
    domain = " ".join(str(domain).split()) or "object"
    return DESCRIPTION_INSTRUCTION.replace("<DOMAIN>", domain)


def approx_tokens(text: str) -> int:
    """Rough token count (4 characters per token) used for the description budget."""
    return math.ceil(len(text) / 4)


def _default_neutral(dataset: "Dataset") -> str:
    info = getattr(dataset, "info", None)
    return getattr(info, "domain", "") or "object"


def _compute_missing(
    captioner: "Captioner", dataset: "Dataset", todo: list[tuple["Sample", str, str]],
    instruction: str, cache: CaptionCache | None, batch_size: int,
) -> dict[str, str]:
    """Describe the samples in ``todo`` (sample, content id, key) batch by batch; each batch is
    stored before the next starts, so an interrupted run keeps what it paid for."""
    raw: dict[str, str] = {}
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        images = [dataset.open_image(sample) for sample, _, _ in batch]
        texts = captioner.describe(images, instruction)
        if len(texts) != len(images):
            raise BackendError(f"captioner {captioner.model_id} returned {len(texts)} descriptions for {len(images)} images")
        for (_, content_id, key), text in zip(batch, texts):
            text = " ".join(str(text).split())  # one line per description in the meta-prompt
            raw[key] = text
            if cache is not None:
                cache.put(key, text, captioner.model_id, content_id)
        log.info("described %d/%d images with %s", min(start + batch_size, len(todo)), len(todo), captioner.model_id)
    return raw


def describe_samples(
    captioner: "Captioner", dataset: "Dataset", samples: Sequence["Sample"], instruction: str,
    classnames: Sequence[str], cache_root: str | Path | None = None, out_path: str | Path | None = None,
    *, neutral: str | None = None, use_cache: bool = True, batch_size: int = 16,
) -> DescriptionSet:
    """Describe ``samples`` once per (captioner, image content, instruction), mask class names.

    ``classnames`` are the names to hide (pass every class the run knows, base and novel);
    ``neutral`` replaces them (default: the dataset's domain word). With ``out_path`` the masked
    descriptions are written there atomically as JSON lines. The ``none`` captioner returns an
    empty set and writes no file."""
    if captioner.model_id == "none" or not samples:
        return DescriptionSet(model_id=captioner.model_id)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    cache = None
    if use_cache:
        from ipo_vlm.io.paths import cache_dir

        cache = CaptionCache(Path(cache_root) if cache_root is not None else cache_dir("captions"))
    keyed = []
    for sample in samples:
        content_id = dataset.content_id(sample)
        keyed.append((sample, content_id, caption_key(captioner.model_id, content_id, instruction)))
    raw: dict[str, str] = {}
    if cache is not None:
        found = {key: cache.get(key) for _, _, key in keyed}
        raw = {key: text for key, text in found.items() if text is not None}
    hits = len(raw)
    # Each distinct image once, even if a sample list repeats it.
    todo = list({key: (s, cid, key) for s, cid, key in keyed if key not in raw}.values())
    raw.update(_compute_missing(captioner, dataset, todo, instruction, cache, batch_size))
    neutral = neutral or _default_neutral(dataset)
    items = []
    for sample, _, key in keyed:
        text, count = mask_classnames(raw[key], classnames, neutral)
        items.append(Description(sample.ref, sample.label, sample.classname, text, count))
    result = DescriptionSet(items, sum(d.masked for d in items), hits, len(todo), captioner.model_id)
    if out_path is not None:
        _write(out_path, result)
    log.info("descriptions: %d items, %d cached, %d computed, %d class-name mentions masked",
             len(items), hits, len(todo), result.maskings)
    return result


def _write(path: str | Path, descs: DescriptionSet) -> None:
    lines = [
        json.dumps({"ref": d.ref, "label": d.label, "classname": d.classname, "text": d.text,
                    "masked": d.masked, "model": descs.model_id}, ensure_ascii=False)
        for d in descs.items
    ]
    atomic_write_bytes(path, "".join(line + "\n" for line in lines).encode("utf-8"))


def read_descriptions(path: str | Path) -> DescriptionSet:
    """The descriptions a run recorded (empty if the file is absent, as with ``none``)."""
    items = [Description(r["ref"], int(r["label"]), r["classname"], r["text"], int(r.get("masked", 0)))
             for r in read_jsonl(path)]
    model = next((r.get("model", "") for r in read_jsonl(path)), "none")
    return DescriptionSet(items, sum(d.masked for d in items), len(items), 0, model)


def _round_robin(items: Sequence[Description]) -> Iterable[Description]:
    """First description of every class (in order of first appearance), then every second, ..."""
    by_class: dict[int, list[Description]] = {}
    for d in items:
        by_class.setdefault(d.label, []).append(d)
    depth = max((len(v) for v in by_class.values()), default=0)
    for i in range(depth):
        for group in by_class.values():
            if i < len(group):
                yield group[i]


def shares(descs: DescriptionSet) -> Counter[str]:
    """How many images share each (non-empty) description text; ``most_common()`` gives the
    texts most shared first."""
    return Counter(d.text for d in descs.items if d.text)


def select_for_prompt(descs: DescriptionSet, budget_tokens: int = 600, selection: str = "round_robin") -> list[str]:
    """Texts for the meta-prompt within ``budget_tokens`` (approximate: characters / 4).

    ``round_robin`` takes one description per class in turn, so every class is represented
    before any gets a second; ``first`` keeps the given order. A description that would overflow
    the budget is skipped (a shorter one may still fit). Exact duplicates are kept once, with how
    many of the images share them ("a sketch of a dog. (61 of 80 images)"), the most shared
    first: a short captioner vocabulary repeats itself, and how often it does is the news."""
    if selection not in SELECTIONS:
        raise ConfigError(f"unknown description selection {selection!r}; known: {', '.join(SELECTIONS)}")
    if budget_tokens < 0:
        raise ConfigError(f"description budget must be >= 0 tokens, got {budget_tokens}")
    counts = shares(descs)
    total = len(descs.items)
    order = _round_robin(descs.items) if selection == "round_robin" else iter(descs.items)
    chosen: list[tuple[int, str]] = []
    seen: set[str] = set()
    left = budget_tokens
    for d in order:
        if not d.text or d.text in seen:
            continue
        text = d.text if counts[d.text] == 1 else f"{d.text} ({counts[d.text]} of {total} images)"
        cost = approx_tokens(text)
        if cost > left:
            continue
        chosen.append((counts[d.text], text))
        seen.add(d.text)
        left -= cost
    return [text for _, text in sorted(chosen, key=lambda pair: -pair[0])]
