"""IPO: an LLM reads the Prompt Optimization Prompt (task, image descriptions, the episodic
memory of scored templates) and proposes new templates, step after step (the paper's method).

The loop (``loop``), the meta-prompt side of a step (``proposer``) and the token estimate of
``--dry-run`` (``dryrun``); the memory every search method shares is :mod:`ipo_vlm.methods.memory`."""

from __future__ import annotations

from typing import Any

from ipo_vlm.methods.base import MethodContext, MethodOutcome

#: the rejection reason of an LLM template that names a training class
REASON_NAMES_CLASS = "names a training class"


class IPOMethod:
    """The LLM optimizer as a :class:`~ipo_vlm.methods.base.Method`."""

    name = "ipo"
    label = "IPO"
    uses_llm = True
    fixed = False
    #: the table's name for the selected template ("optimized" beside "baseline")
    row_label = "optimized"
    proposer = "the LLM"

    def describe(self, config: Any) -> str:
        return f"method {self.name}: {config.optimize.steps} steps x {config.optimize.candidates} candidates"

    def dry_run(self, config: Any) -> Any:
        """What the run would ask of the LLM, from the real proposer and the run's settings."""
        from ipo_vlm.methods.ipo.dryrun import dry_run_plan

        return dry_run_plan(config)

    def run(self, ctx: MethodContext) -> MethodOutcome:
        from ipo_vlm.methods.ipo.loop import OptimizationLoop
        from ipo_vlm.methods.memory import Memory
        from ipo_vlm.methods.ipo.proposer import MetaPromptProposer

        info, o = ctx.task.dataset.info, ctx.config.optimize
        proposer = MetaPromptProposer(info.domain, o.candidates, ctx.descriptions, info.name, check=_proposal_check(ctx),
                                      style=o.meta_prompt, max_words=o.max_words, guidance=o.guidance)
        loop = OptimizationLoop(
            ctx.record, ctx.config, ctx.session, proposer, ctx.task.score, Memory(o.memory_size),
            progress=ctx.progress, hook=ctx.hook, errors=_errors_of(ctx) if o.reflect else None,
        )
        return loop.run(ctx.seeds)

    def replay_pool(self, history: Any, config: Any) -> list[Any]:
        """The memory the loop ended with, replayed from the recorded history."""
        from ipo_vlm.methods.search import replay_memory

        return replay_memory(history, config)


def _proposal_check(ctx: MethodContext) -> Any:
    """The task's own check, then: no training class named outside the placeholder. Such a
    template puts one class's word into every class's prompt and tells nothing about the
    unseen classes it must also serve; the small models write them when they copy a class
    into the line ("... {} = t-shirt"). Only base class names are looked for: the novel ones
    stay unseen during the search."""
    from ipo_vlm.captioner.masking import mentioned_class
    from ipo_vlm.prompting.placeholders import PLACEHOLDER

    task = ctx.task

    def check(template: str) -> str | None:
        problem = task.check(template)
        if problem is None and mentioned_class(template.replace(PLACEHOLDER, " "), task.classnames):
            return REASON_NAMES_CLASS
        return problem

    return check


def _errors_of(ctx: MethodContext) -> Any:
    """``template -> Reflection`` on the task's training images (``optimize.reflect``)."""
    from ipo_vlm.prompting.reflect import reflect

    o, task = ctx.config.optimize, ctx.task

    def errors(template: str) -> Any:
        truth, predicted = task.train_predictions(template)
        return reflect(truth, predicted, ctx.train_descriptions, task.classnames, o.reflect, o.reflect_class_names)

    return errors


def load_ipo(name: str = "", **_: Any) -> IPOMethod:
    return IPOMethod()


__all__ = ["IPOMethod", "load_ipo"]
