"""What a method is: a way to fill a run's history with scored templates.

IPO (an LLM proposes, ``methods.ipo``) is one method; others sit beside it and write the same
run files, so selection, evaluation, reports and benchmarks never ask which method made a run.
A method receives a :class:`MethodContext` (settings, the scoring engine's task, the run's
record, an LLM session when it needs one) and returns a :class:`MethodOutcome`.

Methods are chosen by name through :data:`METHODS`, a registry like the backends' ones: a
third-party method registers under the entry-point group ``ipo_vlm.method``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ipo_vlm.registry import Registry
from ipo_vlm.scored import ScoredTemplate

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.engine.task import Task

#: called at named crash-safe points ("candidate", "step_done"); tests raise from it to simulate a kill
Hook = Callable[[str, int], None]


@dataclass
class StepRecord:
    """What ``steps.jsonl`` says about one finished step."""

    step: int
    llm_calls: int = 0
    returned: int = 0
    valid: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    #: the templates the step chose to score, in order: a resumed run re-scores any of them
    #: that ``history.jsonl`` lost (a torn last line)
    candidates: list[str] = field(default_factory=list)


class RunRecord(Protocol):
    """The append-only record a method writes to (a run directory implements it)."""

    def append_history(self, scored: ScoredTemplate) -> None: ...

    def history(self) -> list[ScoredTemplate]: ...

    def append_step(self, record: StepRecord) -> None: ...

    def steps(self) -> list[StepRecord]: ...

    def last_step_done(self) -> int: ...


@dataclass(frozen=True)
class Progress:
    """Sent to the progress callback after every finished step, and while a step works."""

    step: int
    steps: int
    best_template: str
    best_acc: float
    tokens_in: int
    tokens_out: int
    #: what the step is doing now ("asking the LLM (call 2)"); empty once the step is finished
    doing: str = ""
    #: LLM answers served from the response cache so far (no tokens spent on them)
    cached: int = 0


@dataclass
class MethodContext:
    """Everything a method may use; built by the run layer (``runs.optimize``)."""

    config: "RunConfig"
    task: "Task"
    record: RunRecord
    #: templates scored before the first step ("a photo of a {}." and the dataset's own)
    seeds: list[str]
    #: an ``LLMSession`` for methods with ``uses_llm``; None otherwise
    session: Any = None
    #: masked image descriptions chosen for the meta-prompt
    descriptions: list[str] = field(default_factory=list)
    progress: Callable[[Progress], None] | None = None
    hook: Hook = lambda event, step: None
    #: the masked description of every training image, in the task's order (empty: none)
    train_descriptions: list[str] = field(default_factory=list)


@dataclass
class MethodOutcome:
    steps_done: int
    stopped: str  # "done" or "budget"
    #: the method's final pool to select from, best first (IPO: its episodic memory)
    pool: list[ScoredTemplate]
    steps: list[StepRecord]
    #: whether the method did all it was asked; None: all configured steps are done
    complete: bool | None = None
    #: templates the method itself ensembles (its headline is then the ensemble)
    ensemble: list[str] | None = None


class Method(Protocol):
    """A way to produce scored templates for one run.

    Besides ``name``, ``uses_llm`` and ``run``, a method may say (see :func:`traits`; defaults in
    brackets): ``label``, its name for readers [``name``]; ``row_label``, the name of its
    selected template in a run's result table [``name``]; ``proposer``, who proposes its templates in words ["the NAME method"];
    ``fixed``, whether its templates are fixed in advance, so
    its selected template is a seed by design, never "the baseline kept" [False];
    ``describe(config)``, the line shown when it starts ["method NAME: scoring its templates"];
    ``dry_run(config)``, what it would ask of the LLM (a ``DryRunPlan``) or None for no LLM call
    [None]; ``replay_pool(history, config)``, see below."""

    name: str
    #: whether the run must create an LLM (and its session) for this method
    uses_llm: bool

    def run(self, ctx: MethodContext) -> MethodOutcome: ...

    # Optional: ``replay_pool(history, config) -> list[ScoredTemplate]``, the pool the method
    # would end with after ``history``. ``result.json`` records the pool of every finished run;
    # this is how a reader ranks a run still in progress (without it: the whole history).


METHODS: Registry[Method] = Registry("method", backends=False)
METHODS.register("ipo", "ipo_vlm.methods.ipo:load_ipo", "an LLM proposes templates from the meta-prompt (the paper's method)")
METHODS.register("random", "ipo_vlm.methods.random:load_random", "random search over a template bank, same budget and selection (no LLM)")
METHODS.register("handcrafted", "ipo_vlm.methods.fixed:load_handcrafted", "the dataset's hand-crafted template, no search")
METHODS.register("ensemble80", "ipo_vlm.methods.fixed:load_ensemble80", "CLIP's 80 ImageNet templates, ensembled")


def create_method(name: str, **options: Any) -> Method:
    """The method registered under ``name``; an unknown name lists the known ones."""
    return METHODS.create(name, **options)


#: the methods every other method is measured against, in the benchmark's paired table: the
#: dataset's hand-crafted template (no search; first: the gain per token is measured over it) and
#: random search (the same budget without an LLM)
REFERENCES = ("handcrafted", "random")


@dataclass(frozen=True)
class MethodTraits:
    """What readers ask of a method, with the defaults of a method that does not say."""

    name: str
    label: str
    row_label: str
    fixed: bool
    uses_llm: bool
    #: who proposes its templates, in words ("the LLM"; default "the NAME method")
    proposer: str = ""


def traits(name: str) -> MethodTraits:
    """The traits of the method registered under ``name``; a method not installed here (a run
    read on another machine) is shown by its name."""
    from ipo_vlm.errors import ConfigError

    try:
        method: Any = create_method(name)
    except ConfigError:
        return MethodTraits(name, name, name, False, False, f"the {name} method")
    label = str(getattr(method, "label", name))
    return MethodTraits(name, label, str(getattr(method, "row_label", name)), bool(getattr(method, "fixed", False)),
                        bool(method.uses_llm), str(getattr(method, "proposer", f"the {name} method")))


def describe(method: Any, config: "RunConfig") -> str:
    """The line shown when ``method`` starts on ``config``."""
    say = getattr(method, "describe", None)
    return say(config) if callable(say) else f"method {method.name}: scoring its templates"


def dry_run(method: Any, config: "RunConfig") -> Any:
    """``method``'s ``DryRunPlan`` for ``config``, or None when it calls no LLM."""
    plan = getattr(method, "dry_run", None)
    return plan(config) if callable(plan) and method.uses_llm else None
