"""``--dry-run``: what an IPO run would ask of the LLM, estimated before any call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ipo_vlm.config import RunConfig
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE
from ipo_vlm.scored import ScoredTemplate


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


def _typical_reflection(k: int) -> Any:
    """A stand-in reflection of ``k`` description lines of typical length, to price the block."""
    from ipo_vlm.prompting.reflect import PAIRS_SHOWN, Reflection

    line = "a photo of an object on a plain background, seen from the front."
    return Reflection(total=100, wrong=20, descriptions=tuple((line, 2) for _ in range(k)),
                      pairs=tuple(("", "", 3) for _ in range(PAIRS_SHOWN)))


def dry_run_plan(config: RunConfig) -> DryRunPlan:
    """Estimate LLM calls and tokens from the first meta-prompt, without calling any model.

    The meta-prompt is the run's own: IPO's proposer with the run's ``meta_prompt`` style and
    ``max_words``, and a memory that starts with the seeds the run would score (the baselines and,
    with a captioner, ``description_seeds`` templates made from the descriptions). The memory grows
    by up to ``candidates`` entries per step until it holds ``memory_size``, so later prompts are
    longer; with ``show_worst`` the worst templates outside the memory are shown too, once there
    are some; descriptions are counted at their full budget."""
    from ipo_vlm.data import load_dataset
    from ipo_vlm.llm.tokens import estimate_request_tokens, estimate_tokens
    from ipo_vlm.methods.ipo.proposer import MetaPromptProposer
    from ipo_vlm.prompting import render_memory

    info = load_dataset(config.data.dataset, config.data.data_root).info
    o = config.optimize
    captioned = config.captioner.spec.split(":")[0] != "none" and config.captioner.budget_tokens > 0
    seeds = list(dict.fromkeys([BASELINE_TEMPLATE, info.template]))
    # a description seed is priced like "a photo of a {}." with a few words of description
    seeds += [f"a {'described ' * 3}photo of a {{}} {i}." for i in range(o.description_seeds if captioned else 0)]
    memory = [ScoredTemplate(t, 0.5, 1.0) for t in seeds][: o.memory_size]
    proposer = MetaPromptProposer(info.domain, o.candidates, [], info.name, style=o.meta_prompt, max_words=o.max_words,
                                  guidance=o.guidance)
    messages = proposer.messages(memory, reflection=_typical_reflection(o.reflect) if o.reflect else None)
    descriptions = config.captioner.budget_tokens if captioned else 0
    first = estimate_request_tokens(messages) + descriptions
    # one memory line per extra entry, priced like the seed lines (a shown worst template too)
    per_entry = max(1, estimate_tokens(render_memory(memory)) // max(1, len(memory)))
    held = memory_entries_held(o.steps, len(memory), o.candidates, o.memory_size)
    worst = worst_shown(o.steps, len(seeds), o.candidates, o.memory_size, o.show_worst)
    calls_max = o.steps * (1 + o.max_retries_per_step)
    tokens_out_max = calls_max * config.llm.max_tokens
    return DryRunPlan(
        calls_min=o.steps,
        calls_max=calls_max,
        first_prompt_tokens=first,
        tokens_in=first * o.steps + per_entry * (held - len(memory) * o.steps + worst),
        # ~20 tokens per candidate line, but never more than the calls may write
        tokens_out_typical=min(o.steps * o.candidates * 20, tokens_out_max),
        tokens_out_max=tokens_out_max,
    )


def worst_shown(steps: int, seeds: int, candidates: int, size: int, show: int) -> int:
    """The sum over steps 1..``steps`` of the worst templates the prompt shows: at step j, up to
    ``show`` of the ``seeds + candidates * (j - 1) - size`` scored templates outside the memory."""
    if show <= 0 or steps <= 0:
        return 0
    total, j = 0, 1
    while j <= steps:
        outside = max(0, seeds + candidates * (j - 1) - size)
        if outside >= show:  # from here on every step shows ``show``
            return total + show * (steps - j + 1)
        total += outside
        j += 1
    return total


def memory_entries_held(steps: int, seeds: int, candidates: int, size: int) -> int:
    """The sum over steps 1..``steps`` of the entries the memory holds when the step's prompt is
    rendered: ``min(size, seeds + candidates * (step - 1))``, in closed form (a billion steps
    cost nothing to estimate)."""
    if steps <= 0:
        return 0
    # steps j = 0 .. growing-1 still see a memory below its size
    growing = min(steps, max(0, -(-(size - seeds) // candidates)))
    return growing * seeds + candidates * growing * (growing - 1) // 2 + (steps - growing) * size
