"""``optimize()``: one IPO run from settings to ``result.json``, resumable at any point.

Order of work, chosen so that nothing computed is lost to a user error: every backend is created
and preflighted (unknown specs, missing API keys, unreachable servers, bad data paths) before
the run directory is touched; then the split, image features, descriptions, the loop
(:mod:`ipo_vlm.loop`), the selection of the best template and its test evaluation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.config import RunConfig
from ipo_vlm.errors import ConfigError
from ipo_vlm.jsonio import atomic_write_json
from ipo_vlm.loop import BASELINE_TEMPLATE, Hook, LoopProgress, LoopSettings, OptimizationLoop
from ipo_vlm.rundir import RunDir

log = logging.getLogger(__name__)

Stage = Callable[[str], None]


@dataclass
class Backends:
    """Everything a run talks to, created and checked before any work starts."""

    dataset: Any
    vlm: Any
    llm: Any
    captioner: Any


def create_backends(config: RunConfig, llm: Any = None, vlm: Any = None, captioner: Any = None) -> Backends:
    """Create (or take the given) backends and run their preflight checks. Raises the typed
    user errors (``ConfigError``, ``DataError``, ``BackendError``) before any work is done."""
    from ipo_vlm.data import load_dataset

    dataset = load_dataset(config.data.dataset, config.data.data_root)
    if llm is None:
        from ipo_vlm.llm import create_llm

        llm = create_llm(config.llm.spec)
    check = getattr(llm, "check", None)
    if callable(check):
        check()  # missing key / unreachable server: fail now, not after the features
    if vlm is None:
        from ipo_vlm.vlm import create_vlm

        vlm = create_vlm(config.vlm)
    if captioner is None:
        from ipo_vlm.captioner import create_captioner

        captioner = create_captioner(config.captioner.spec, vlm=vlm)
    return Backends(dataset, vlm, llm, captioner)


def load_or_make_split(rundir: RunDir, dataset: Any, config: RunConfig) -> Any:
    """The run's split: read from ``split.json`` when it exists (resume), else drawn and saved."""
    import json

    from ipo_vlm.data import TaskSplit, make_split

    if rundir.split_path.exists():
        return TaskSplit.from_json(json.loads(rundir.split_path.read_text(encoding="utf-8")), dataset)
    split = make_split(dataset, config.data.shots, config.data.seed)
    atomic_write_json(rundir.split_path, split.to_json())
    return split


class _Scoring:
    """Train (and val) score functions over cached features of the base classes."""

    def __init__(self, backends: Backends, split: Any, select_on: str) -> None:
        import numpy as np

        from ipo_vlm.features import FeatureStore
        from ipo_vlm.scoring import Scorer

        self.scorer = Scorer(backends.vlm)
        self.classnames = list(split.base_classnames)
        self.all_classnames = self.classnames + list(split.novel_classnames)
        store = FeatureStore(backends.vlm)
        self.train = (store.features(backends.dataset, split.train), np.asarray([s.label for s in split.train]))
        self.val = None
        if select_on == "val" and not split.val:
            raise ConfigError("--select-on val needs validation images, but the split has none")
        if select_on == "val":
            self.val = (store.features(backends.dataset, split.val), np.asarray([s.label for s in split.val]))

    def _score(self, data: tuple[Any, Any], templates: list[str]) -> list[tuple[float, float]]:
        scores = self.scorer.score(list(templates), self.classnames, data[0], data[1])
        return [(float(s.accuracy), float(s.loss)) for s in scores]

    def score_train(self, templates: list[str]) -> list[tuple[float, float]]:
        return self._score(self.train, templates)

    def score_val(self, templates: list[str]) -> list[tuple[float, float]]:
        assert self.val is not None
        return self._score(self.val, templates)

    def check(self, template: str) -> str | None:
        # novel class names count too: the template must also fit them at test time
        return self.scorer.check(template, self.all_classnames)


def _descriptions(backends: Backends, split: Any, config: RunConfig, rundir: RunDir, say: Stage) -> tuple[list[str], int]:
    """Masked image descriptions selected for the meta-prompt, and how many masks were applied."""
    if backends.captioner.model_id == "none" or config.captioner.budget_tokens == 0:
        return [], 0
    say(f"describing {len(split.train)} training images with {backends.captioner.model_id}")
    from ipo_vlm.captioner.descriptions import describe_samples, description_instruction, select_for_prompt

    ds = backends.dataset
    descs = describe_samples(
        backends.captioner,
        ds,
        split.train,
        description_instruction(ds.info.domain),
        classnames=list(ds.info.classnames),
        out_path=rundir.descriptions_path,
    )
    return select_for_prompt(descs, config.captioner.budget_tokens, config.captioner.selection), descs.maskings


def _session(backends: Backends, config: RunConfig, rundir: RunDir) -> Any:
    from ipo_vlm.llm.session import LLMSession

    cache = None
    if config.llm.use_cache:
        from ipo_vlm.llm.cache import ResponseCache

        cache = ResponseCache()
    return LLMSession(
        backends.llm,
        cache=cache,
        calls_path=rundir.llm_calls_path,
        max_total_tokens=config.optimize.max_llm_tokens,
        start_tokens=rundir.llm_tokens_spent(),
    )


def loop_settings(config: RunConfig) -> LoopSettings:
    o, llm = config.optimize, config.llm
    return LoopSettings(
        steps=o.steps,
        candidates=o.candidates,
        max_retries_per_step=o.max_retries_per_step,
        seed=config.data.seed,
        temperature=llm.temperature,
        top_p=llm.top_p,
        repeat_penalty=llm.repeat_penalty,
        max_tokens=llm.max_tokens,
        constrained=llm.constrained,
    )


def optimize(
    config: RunConfig,
    out: str | Path,
    resume: bool = False,
    progress: Callable[[LoopProgress], None] | None = None,
    stage: Stage | None = None,
    hook: Hook | None = None,
    backends: Backends | None = None,
) -> dict[str, Any]:
    """Run (or resume) IPO with ``config`` into the run directory ``out``; returns ``result.json``.

    ``progress`` receives a :class:`LoopProgress` after each step, ``stage`` a short line when a
    phase starts; ``hook(event, step)`` is called at the crash-safe points ("config",
    "candidate", "step_done", "result"), for tests that simulate a kill there. The run directory
    has one writer: a second process is refused (``RunLock``) while this one runs."""
    from ipo_vlm.paths import cache_dir, check_creatable_dir
    from ipo_vlm.runs.lock import RunLock

    check_creatable_dir(out, "--out")  # a bad --out is found before any model loads
    cache_dir()  # so is an unusable cache dir, and both before the run directory is touched
    backends = backends or create_backends(config)
    with RunLock(out):
        return _optimize_locked(config, RunDir(out), resume, progress, stage, hook, backends)


def _optimize_locked(
    config: RunConfig, rundir: RunDir, resume: bool, progress: Callable[[LoopProgress], None] | None,
    stage: Stage | None, hook: Hook | None, backends: Backends,
) -> dict[str, Any]:
    from ipo_vlm.memory import Memory
    from ipo_vlm.prompting import PROMPT_VERSION
    from ipo_vlm.proposer import MetaPromptProposer

    started = time.perf_counter()
    say = stage or (lambda msg: log.info("%s", msg))
    hook = hook or (lambda event, step: None)
    rundir.prepare(config.to_dict(), resume, PROMPT_VERSION)
    hook("config", -1)
    split = load_or_make_split(rundir, backends.dataset, config)
    say(f"encoding {len(split.train)} training images of {len(split.base_classnames)} base classes")
    scoring = _Scoring(backends, split, config.optimize.select_on)
    descriptions, maskings = _descriptions(backends, split, config, rundir, say)
    info = backends.dataset.info
    proposer = MetaPromptProposer(info.domain, config.optimize.candidates, descriptions, info.name, check=scoring.check)
    session = _session(backends, config, rundir)
    loop = OptimizationLoop(
        rundir, loop_settings(config), session, proposer, scoring.score_train,
        scoring.score_val if scoring.val is not None else None, Memory(config.optimize.memory_size),
        progress=progress, hook=hook,
    )
    say(f"optimizing: {config.optimize.steps} steps x {config.optimize.candidates} candidates")
    outcome = loop.run([BASELINE_TEMPLATE, info.template])
    say("evaluating on the test split")
    from ipo_vlm.result import build_result

    result = build_result(config, rundir, backends, split, outcome, session, maskings, time.perf_counter() - started)
    hook("result", outcome.steps_done)
    rundir.write_result(result)
    return result


@dataclass(frozen=True)
class DryRunPlan:
    """What a run would ask of the LLM, estimated before any call (``--dry-run``)."""

    calls_min: int  # one call per step
    calls_max: int  # every step using all its retries
    first_prompt_tokens: int
    tokens_in: int  # prompt tokens over all steps at one call per step
    tokens_out_typical: int  # ~20 tokens per candidate line
    tokens_out_max: int  # every call writing ``llm.max_tokens``

    @property
    def tokens_typical(self) -> int:
        return self.tokens_in + self.tokens_out_typical


def dry_run_plan(config: RunConfig) -> DryRunPlan:
    """Estimate LLM calls and tokens from the first meta-prompt, without calling any model.

    The memory grows by up to ``candidates`` entries per step until it holds ``memory_size``,
    so later prompts are longer; descriptions are counted at their full budget."""
    from ipo_vlm.data import load_dataset
    from ipo_vlm.llm.tokens import estimate_request_tokens, estimate_tokens
    from ipo_vlm.prompting import render_memory
    from ipo_vlm.proposer import MetaPromptProposer

    info = load_dataset(config.data.dataset, config.data.data_root).info
    o = config.optimize
    seeds = list(dict.fromkeys([BASELINE_TEMPLATE, info.template]))
    memory = [(t, 0.5, 1.0) for t in seeds]
    messages = MetaPromptProposer(info.domain, o.candidates, [], info.name).messages(memory)
    descriptions = config.captioner.budget_tokens if config.captioner.spec.split(":")[0] != "none" else 0
    first = estimate_request_tokens(messages) + descriptions
    # one memory line per extra entry, priced like the seed lines
    per_entry = max(1, estimate_tokens(render_memory(memory)) // max(1, len(memory)))
    tokens_in = 0
    for step in range(1, o.steps + 1):
        held = min(o.memory_size, len(seeds) + o.candidates * (step - 1))
        tokens_in += first + per_entry * (held - len(memory))
    calls_max = o.steps * (1 + o.max_retries_per_step)
    return DryRunPlan(
        calls_min=o.steps,
        calls_max=calls_max,
        first_prompt_tokens=first,
        tokens_in=tokens_in,
        tokens_out_typical=o.steps * o.candidates * 20,
        tokens_out_max=calls_max * config.llm.max_tokens,
    )
