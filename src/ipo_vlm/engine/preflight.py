"""What a run will ask of the VLM, and how long that takes on this machine, before it starts.

A dry run knows the split, so it knows which images the run needs and which of them the
feature store lacks, and how many prompts each step encodes (every candidate, once per base
class: a new template's prompts are never cached). It then times the VLM itself on a small
sample — one batch of the images to encode, one batch of prompts shaped like a step's — and
multiplies. Nothing is written: the sample goes straight to the encoder, past the caches.

Both samples are one batch of the size the run uses, so that per-item costs match the run's
(on an accelerator a small batch would leave it idle; on a CPU a small one fits its caches
better). LLM time is not included.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ipo_vlm.prompting.placeholders import fill

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.data import TaskSplit
    from ipo_vlm.data.base import Dataset, Sample
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)

#: templates of the length an LLM writes (10-16 words), for timing the text encoder
SAMPLE_TEMPLATES = (
    "a blurry close-up photo of a {}, a type of {domain}.",
    "an outdoor photo of the {} in soft natural light.",
    "a cropped, low-resolution picture of a {} on a plain background.",
    "a bright studio photo of a single {} seen from the side.",
    "a {} seen from above, a kind of {domain}, in a busy scene.",
)
#: prompts timed: one full batch of the text encoder's default size
TEXT_SAMPLE = 128
#: images timed (after one warm-up image): one batch of the image encoder's size, at most this
#: many, so the sample is shaped like the run's batches. Timed on a batch of 4, the estimate came
#: out 1.53 times below the measured run on 2 CPU cores (ViT-B/16 shapes, batches of 32).
IMAGE_SAMPLE = 32
#: above this many images, whether they are stored is judged on a seeded sample of them
CONTENT_ID_SAMPLE = 2000
#: templates the test evaluation encodes for the novel classes: baseline, hand-crafted, chosen
EVALUATED_TEMPLATES = 3


@dataclass(frozen=True)
class ComputeEstimate:
    """The VLM's share of a run: images to encode, prompts to encode, and their time here."""

    images_needed: int
    images_to_encode: int
    #: True when ``images_to_encode`` is extrapolated from a sample of the images' content ids
    images_sampled: bool
    sec_per_image: float | None  # None: nothing to encode, so nothing timed
    prompts_per_step: int
    steps: int
    #: every prompt the run encodes: seeds, steps (and a control's), the test evaluation
    prompts_total: int
    sec_per_prompt: float
    device: str

    @property
    def image_seconds(self) -> float:
        return self.images_to_encode * (self.sec_per_image or 0.0)

    @property
    def step_seconds(self) -> float:
        return self.prompts_per_step * self.sec_per_prompt

    @property
    def text_seconds(self) -> float:
        return self.prompts_total * self.sec_per_prompt

    def lines(self) -> list[str]:
        """The dry run's lines about the VLM."""
        about = "~" if self.images_sampled else ""
        img = (f"images to encode: {about}{self.images_to_encode:,} of {self.images_needed:,} not in the feature store"
               + (f", {self.sec_per_image:.3f} s each here: ~{duration(self.image_seconds)}" if self.sec_per_image else ""))
        text = (f"prompts: {self.prompts_per_step:,} per step x {self.steps:,} steps, {self.prompts_total:,} with seeds and test, "
                f"{1 / self.sec_per_prompt:.0f}/s here: ~{duration(self.step_seconds)} per step, ~{duration(self.text_seconds)} in all")
        total = f"VLM time on {self.device}: ~{duration(self.image_seconds + self.text_seconds)} (measured on a sample; LLM time not included)"
        return [img, text, total]


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def needed_samples(split: "TaskSplit", with_val: bool) -> list["Sample"]:
    """Every image a run encodes: few-shot training (and validation) images, then the test split."""
    return [*split.train, *(split.val if with_val else []), *split.test_base, *split.test_novel]


def count_unstored(dataset: "Dataset", samples: Sequence["Sample"], vlm: "VisionLanguageModel") -> tuple[list["Sample"], int, bool]:
    """(some images the store lacks, how many it lacks, whether that count is extrapolated).

    An empty store lacks all (no image is read); otherwise content ids are hashed, for at most
    ``CONTENT_ID_SAMPLE`` images drawn with a fixed seed."""
    from ipo_vlm.engine.features import FeatureStore, key_bytes

    store = FeatureStore(vlm)
    unique = list({s.ref: s for s in samples}.values())
    if not store.has_any():
        return unique[:image_sample_size(vlm) + 1], len(unique), False
    sampled = len(unique) > CONTENT_ID_SAMPLE
    probe = random.Random(0).sample(unique, CONTENT_ID_SAMPLE) if sampled else unique
    missing = [s for s in probe if not store.has(key_bytes(dataset.content_id(s)))]
    count = round(len(missing) * len(unique) / len(probe)) if sampled else len(missing)
    return missing, count, sampled


def image_sample_size(vlm: "VisionLanguageModel") -> int:
    """Images to time: the encoder's batch size (``batch_size``), at most ``IMAGE_SAMPLE``."""
    size = getattr(vlm, "batch_size", None)
    return max(1, min(int(size), IMAGE_SAMPLE)) if isinstance(size, int) and size > 0 else 4


def time_images(dataset: "Dataset", samples: Sequence["Sample"], vlm: "VisionLanguageModel") -> float | None:
    """Seconds per image through the image encoder, preprocessing included; None for no samples."""
    if not samples:
        return None
    images = [dataset.open_image(s) for s in samples[: image_sample_size(vlm) + 1]]
    vlm.encode_images(images[:1])  # warm-up: first calls allocate
    timed = images[1:] or images
    started = time.perf_counter()
    vlm.encode_images(timed)
    return (time.perf_counter() - started) / len(timed)


def time_prompts(vlm: "VisionLanguageModel", classnames: Sequence[str], domain: str, candidates: int) -> float:
    """Seconds per prompt for one batch of prompts shaped like a step's (``candidates`` templates
    over the base classes), tokenising included."""
    templates = [t.replace("{domain}", domain) for t in SAMPLE_TEMPLATES[: max(1, min(candidates, len(SAMPLE_TEMPLATES)))]]
    per_template = max(1, min(len(classnames), math.ceil(TEXT_SAMPLE / len(templates))))
    names = list(classnames[:per_template])
    prompts = [fill(t, c) for t in templates for c in names]
    vlm.encode_texts(prompts[:2])  # warm-up
    started = time.perf_counter()
    vlm.encode_texts(prompts)
    return (time.perf_counter() - started) / len(prompts)


def prompts_in_run(config: "RunConfig", n_base: int, n_novel: int, seeds: int, searches: bool) -> int:
    """Prompts the run encodes: seeds and each step's candidates for the base classes (twice with
    a random control), then the evaluated templates (and ensemble) for the novel classes."""
    o = config.optimize
    loop = o.steps * o.candidates if searches else 0
    if searches and o.control == "random":
        loop *= 2
    return (seeds + loop) * n_base + (EVALUATED_TEMPLATES + o.ensemble) * n_novel


def _split_samples(config: "RunConfig", dataset: "Dataset") -> tuple["TaskSplit", list["Sample"]]:
    from ipo_vlm.data import make_split
    from ipo_vlm.scored import NEEDS_VAL

    split = make_split(dataset, config.data.shots, config.data.seed, check=False, class_split=config.data.class_split)
    return split, needed_samples(split, config.optimize.select_on in NEEDS_VAL)


def _estimate(config: "RunConfig", split: "TaskSplit", samples: Sequence["Sample"], images: tuple[int, bool, float | None],
              sec_prompt: float, device: str, searches: bool) -> ComputeEstimate:
    o = config.optimize
    base = len(split.base_classnames)
    return ComputeEstimate(
        images_needed=len({s.ref for s in samples}), images_to_encode=images[0], images_sampled=images[1],
        sec_per_image=images[2], prompts_per_step=o.candidates * base if searches else 0, steps=o.steps if searches else 0,
        prompts_total=prompts_in_run(config, base, len(split.novel_classnames), 2 + o.description_seeds, searches),
        sec_per_prompt=sec_prompt, device=device,
    )


def estimate_compute(config: "RunConfig", dataset: "Dataset", vlm: "VisionLanguageModel", searches: bool = True) -> ComputeEstimate:
    """Measure ``vlm`` on a sample and estimate the run's image and text encoding time.

    ``searches``: whether the method runs steps (IPO, random search) rather than scoring a
    fixed set of templates once."""
    split, samples = _split_samples(config, dataset)
    missing, to_encode, sampled = count_unstored(dataset, samples, vlm)
    sec_image = time_images(dataset, missing, vlm) if to_encode else None
    sec_prompt = time_prompts(vlm, split.base_classnames, dataset.info.domain, config.optimize.candidates)
    return _estimate(config, split, samples, (to_encode, sampled, sec_image), sec_prompt, _device(vlm), searches)


def _device(vlm: "VisionLanguageModel") -> str:
    return str(getattr(vlm, "device", "this machine"))


@dataclass(frozen=True)
class GridEstimate:
    """Several runs' VLM work: per run, and in all (images shared by runs counted once)."""

    runs: list[ComputeEstimate]
    images_to_encode: int
    image_seconds: float
    devices: tuple[str, ...]

    @property
    def text_seconds(self) -> float:
        return sum(r.text_seconds for r in self.runs)

    def lines(self) -> list[str]:
        prompts = sum(r.prompts_total for r in self.runs)
        return [f"images to encode: {self.images_to_encode:,} not in the feature store (shared by cells: counted once), "
                f"~{duration(self.image_seconds)}",
                f"prompts: {prompts:,} over {len(self.runs)} cells, ~{duration(self.text_seconds)}",
                f"VLM time on {', '.join(self.devices)}: ~{duration(self.image_seconds + self.text_seconds)} "
                f"(measured on a sample per VLM and dataset; LLM time not included)"]


def estimate_grid(runs: Sequence[tuple["RunConfig", bool]]) -> GridEstimate:
    """``estimate_compute`` for many runs (``(config, searches)``), loading each VLM and dataset
    once and timing each (VLM, dataset) pair once; the images of runs that share a dataset and
    a VLM are counted once, as the feature store encodes them once."""
    from ipo_vlm.data import load_dataset
    from ipo_vlm.io.hashing import sha256_json
    from ipo_vlm.vlm import create_vlm

    by_vlm: dict[str, list[int]] = {}
    for i, (config, _) in enumerate(runs):
        by_vlm.setdefault(sha256_json([config.vlm, config.vlm_options]), []).append(i)
    estimates: dict[int, ComputeEstimate] = {}
    total_images, image_seconds, devices = 0, 0.0, []
    for indices in by_vlm.values():
        first = runs[indices[0]][0]
        vlm = create_vlm(first.vlm, **first.vlm_options)
        devices.append(_device(vlm))
        pairs: dict[str, tuple[Any, dict[str, Any], list[int]]] = {}
        for i in indices:
            c = runs[i][0]
            pairs.setdefault(sha256_json([c.data.dataset, c.data.data_root]), (c, {}, []))[2].append(i)
        for config, union, members in pairs.values():
            dataset = load_dataset(config.data.dataset, config.data.data_root)
            splits = {i: _split_samples(runs[i][0], dataset) for i in members}
            for _, samples in splits.values():
                union.update((s.ref, s) for s in samples)
            missing, to_encode, sampled = count_unstored(dataset, list(union.values()), vlm)
            sec_image = time_images(dataset, missing, vlm) if to_encode else None
            total_images += to_encode
            image_seconds += to_encode * (sec_image or 0.0)
            split0 = splits[members[0]][0]
            sec_prompt = time_prompts(vlm, split0.base_classnames, dataset.info.domain, config.optimize.candidates)
            for i in members:
                split, samples = splits[i]
                own = count_unstored(dataset, samples, vlm) if len(members) > 1 else (missing, to_encode, sampled)
                estimates[i] = _estimate(runs[i][0], split, samples, (own[1], own[2], sec_image), sec_prompt, _device(vlm), runs[i][1])
        del vlm
    return GridEstimate([estimates[i] for i in range(len(runs))], total_images, image_seconds, tuple(dict.fromkeys(devices)))

