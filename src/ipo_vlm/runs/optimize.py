"""``optimize()``: one run from settings to ``result.json``, resumable at any point.

Order of work, chosen so that nothing computed is lost to a user error: every backend is created
and preflighted (unknown specs, missing API keys, unreachable servers, bad data paths) before
the run directory is touched; then the split, image features (the engine's :class:`Task`),
descriptions, the method (IPO's loop by default), the selection of the best template and its
test evaluation."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ipo_vlm.config import RunConfig
from ipo_vlm.engine.task import Task
from ipo_vlm.errors import DataError
from ipo_vlm.io.jsonio import atomic_write_json
from ipo_vlm.methods.base import Hook, MethodContext, Progress, create_method, describe, traits
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE
from ipo_vlm.runs.control import run_control
from ipo_vlm.runs.observe import ObservedRecord, RunObserver, create_observer, reporting_failures
from ipo_vlm.runs.result import RunResult, build_result
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.scored import NEEDS_VAL

log = logging.getLogger(__name__)

Stage = Callable[[str], None]


@dataclass
class Backends:
    """Everything a run talks to, created and checked before any work starts."""

    dataset: Any
    vlm: Any
    llm: Any
    captioner: Any


def create_backends(
    config: RunConfig, llm: Any = None, vlm: Any = None, captioner: Any = None, uses_llm: bool = True
) -> Backends:
    """Create (or take the given) backends and run their preflight checks. Raises the typed
    user errors (``ConfigError``, ``DataError``, ``BackendError``) before any work is done.
    A method that needs no LLM (``uses_llm=False``) gets neither an LLM nor a captioner: image
    descriptions only ever go to the LLM."""
    from ipo_vlm.captioner.base import NoCaptioner
    from ipo_vlm.data import load_dataset

    dataset = load_dataset(config.data.dataset, config.data.data_root)
    if llm is None and uses_llm:
        from ipo_vlm.llm import create_llm

        llm = create_llm(config.llm.spec)
    check = getattr(llm, "check", None)
    if callable(check):
        check()  # missing key / unreachable server: fail now, not after the features
    if not uses_llm:
        captioner = captioner or NoCaptioner()
    if vlm is None:
        from ipo_vlm.vlm import create_vlm

        vlm = create_vlm(config.vlm, **config.vlm_options)
    if captioner is None:
        from ipo_vlm.captioner import create_captioner

        captioner = create_captioner(config.captioner.spec, vlm=vlm)
    return Backends(dataset, vlm, llm, captioner)


def resolve_run_config(
    out: str | Path | None = None,
    resume: bool = False,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """A run's settings as the command line resolves them: a preset — or, when resuming without
    a preset or settings file, the run's own ``config.json`` — then the file, then ``overrides``.

    Args:
        out: the run directory (read only when resuming).
        resume: start from the run's own settings instead of a preset.
        preset: the preset to start from (``paper`` unless named).
        config_file: a YAML or JSON settings file.
        overrides: nested settings laid over the rest, e.g. ``{"optimize": {"steps": 3}}``.
    """
    from ipo_vlm.config import resolve_config

    base = None
    if resume and out and not preset and not config_file:
        base = RunDir(out).read_config()["config"]
    return resolve_config(preset, base, config_file, overrides)


def load_or_make_split(rundir: RunDir, dataset: Any, config: RunConfig) -> Any:
    """The run's split: read from ``split.json`` when it exists (resume), else drawn and saved."""
    from ipo_vlm.data import load_split, make_split

    if rundir.split_path.exists():
        return load_split(rundir.split_path, dataset)
    split = make_split(dataset, config.data.shots, config.data.seed, class_split=config.data.class_split)
    atomic_write_json(rundir.split_path, split.to_json())
    return split


def _descriptions(backends: Backends, split: Any, config: RunConfig, rundir: RunDir) -> tuple[list[str], int, list[str], list[str]]:
    """Masked image descriptions selected for the meta-prompt, how many masks were applied, the
    seed templates made from the most shared descriptions (``optimize.description_seeds``) and
    every training image's masked description, in the split's order."""
    if backends.captioner.model_id == "none" or config.captioner.budget_tokens == 0:
        return [], 0, [], []
    from ipo_vlm.captioner.descriptions import describe_samples, description_instruction, select_for_prompt, shares

    ds = backends.dataset
    descs = describe_samples(
        backends.captioner,
        ds,
        split.train,
        description_instruction(ds.info.domain),
        classnames=list(ds.info.classnames),
        out_path=rundir.descriptions_path,
    )
    from ipo_vlm.prompting.seeds import templates_from_descriptions

    shared = [text for text, _ in shares(descs).most_common()]
    o = config.optimize
    seeds = templates_from_descriptions(shared, ds.info.domain, o.description_seeds, o.max_words)
    chosen = select_for_prompt(descs, config.captioner.budget_tokens, config.captioner.selection)
    return chosen, descs.maskings, seeds, [d.text for d in descs.items]


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


def _split_with_images(rundir: RunDir, dataset: Any, config: RunConfig, resume: bool) -> Any:
    """The run's split, every image of it decoded (cached by content, so cheap on a resume); an
    image the resumed run's split names but the disk no longer holds says what the user can do."""
    if len(dataset.info.classnames) < 3:  # before the split's own warnings: they would not matter
        raise DataError(_TOO_FEW.format(n=len(dataset.info.classnames)))
    try:
        split = load_or_make_split(rundir, dataset, config)
        dataset.verify_samples([*split.train, *split.val, *split.test_base, *split.test_novel])
    except DataError as e:
        if resume and "not found" in str(e):
            raise DataError(f"{e}; {rundir.split_path} lists it: put the file back (or fix --data-root), "
                            f"or start a new run with another --out (it draws a new split)") from None
        raise
    _check_discriminates(split)
    return split


_TOO_FEW = ("the dataset has {n} class(es): the first half are the base classes the templates are scored on, and scoring "
            "needs at least 2 of them (and 1 novel class), or every template scores 100 %; use at least 4 classes")


def _check_discriminates(split: Any) -> None:
    """Refuse a split on which scoring cannot tell templates apart (one base class, or training
    images of only one class: every template scores 100 %), before any LLM token is spent; warn
    when the novel half has a single class (its accuracy is 100 % whatever the template)."""
    base, novel = len(split.base_classnames), len(split.novel_classnames)
    trained = len({s.label for s in split.train})
    if base < 2 or trained < 2:
        raise DataError(f"the split has {base} base class(es), training images of {trained}: scoring needs at least 2 "
                        f"(and 1 novel class), so every template would score 100 %; use a dataset of at least 4 classes")
    if novel < 2:
        log.warning("the dataset has %d novel class(es): novel accuracy is 100 %% whatever the template; "
                    "use at least 4 classes for a base-to-novel result that means something", novel)


def optimize(
    config: RunConfig,
    out: str | Path,
    resume: bool = False,
    progress: Callable[[Progress], None] | None = None,
    stage: Stage | None = None,
    hook: Hook | None = None,
    backends: Backends | None = None,
    observer: RunObserver | None = None,
) -> RunResult:
    """Run (or resume) ``config.method`` (IPO by default) into the run directory ``out``; returns the
    ``RunResult`` also written to ``result.json``.

    ``progress`` receives a ``Progress`` after each step, ``stage`` a
    short line when a phase starts; ``hook(event, step)`` is called at the crash-safe points
    ("config", "candidate", "step_done", "result"), for tests that simulate a kill there. The run
    directory has one writer: a second process is refused (``RunLock``) while this one runs.

    Args:
        config: the run's settings (see ``resolve_config``).
        out: the run directory; created if missing. Every file in it is append-only or
            written atomically, so a run killed at any moment can be resumed.
        resume: continue the run already in ``out`` instead of starting one.
        progress: called with the progress after each step.
        stage: called with a short line when a phase starts.
        hook: called at the crash-safe points, for tests.
        backends: the dataset, VLM, LLM and captioner to use instead of those the settings
            name (tests pass fakes here).
        observer: hears the run's steps and result (default: the tracker of
            ``config.tracking``; see ``ipo_vlm.runs.observe``).

    Returns:
        The run's result, also written to ``out/result.json``. A spent token budget is not an
        error: the run ends cleanly, resumable, with ``stopped == "budget"``.

    Raises:
        ConfigError: invalid settings or output path, or a run directory held by another process.
        DataError: a dataset or image that cannot be used.
        BackendError: a model or server that cannot be loaded or reached, or a missing API key.
    """
    from ipo_vlm.io.paths import cache_dir, check_creatable_dir, check_output_path
    from ipo_vlm.runs.lock import RunLock

    check_creatable_dir(out, "--out")  # a bad --out is found before any model loads
    cache_dir()  # so is an unusable cache dir, and both before the run directory is touched
    method = create_method(config.method)
    observer = observer or create_observer(config.tracking)
    backends = backends or create_backends(config, uses_llm=method.uses_llm)
    # a run inside a folder dataset would become one of its classes on the next load
    check_output_path(out, "--out", data_root=getattr(backends.dataset, "image_dir", None))
    with RunLock(out), reporting_failures(observer):
        return _optimize_locked(config, RunDir(out), resume, method, backends, progress, stage, hook, observer)


def _optimize_locked(
    config: RunConfig, rundir: RunDir, resume: bool, method: Any, backends: Backends,
    progress: Callable[[Progress], None] | None, stage: Stage | None, hook: Hook | None, observer: RunObserver,
) -> RunResult:
    """The run itself, with this process as the run directory's only writer."""
    from ipo_vlm.prompting import PROMPT_VERSION

    started = time.perf_counter()
    say = stage or (lambda msg: log.info("%s", msg))
    hook = hook or (lambda event, step: None)
    rundir.prepare(config.to_dict(), resume, PROMPT_VERSION)
    finished = rundir.read_result() if resume else None
    if finished and finished.get("complete") and not rundir.changes:
        say(f"{rundir.path} is complete; nothing to do (extend it with --resume --steps N)")
        return RunResult.from_dict(finished)  # a resume never rewrites what the run recorded
    hook("config", -1)
    observer.started(rundir, config.to_dict(), resume)
    # every image the run will need decodes, before any LLM token is spent on it
    split = _split_with_images(rundir, backends.dataset, config, resume)
    say(f"encoding {len(split.train)} training images of {len(split.base_classnames)} base classes")
    task = Task(backends.dataset, split, backends.vlm, with_val=config.optimize.select_on in NEEDS_VAL)
    descriptions, maskings, described, per_image = [], 0, [], []
    if method.uses_llm and backends.captioner.model_id != "none":
        say(f"describing {len(split.train)} training images with {backends.captioner.model_id}")
        descriptions, maskings, described, per_image = _descriptions(backends, split, config, rundir)
    session = _session(backends, config, rundir) if method.uses_llm else None
    seeds = [BASELINE_TEMPLATE, backends.dataset.info.template, *described]
    ctx = MethodContext(config, task, ObservedRecord(rundir, observer), seeds, session, descriptions, progress, hook, per_image)
    say(describe(method, config))
    outcome = method.run(ctx)
    control = None
    if config.optimize.control != "none" and config.method != config.optimize.control:
        say(f"{traits(config.optimize.control).label} control: {config.optimize.steps} steps x {config.optimize.candidates} candidates")
        control = run_control(config, rundir, task, seeds, hook)
    say("evaluating on the test split")
    tokens = (session.tokens_in, session.tokens_out) if session else (0, 0)
    result = build_result(config, rundir, task, outcome, tokens, maskings, time.perf_counter() - started)
    if control is not None:
        control["diff_hm"] = result.hm - control["hm"]
        result = replace(result, control=control)
    hook("result", outcome.steps_done)
    rundir.write_result(result.to_dict())
    observer.finished(rundir, result.to_dict())
    return result
