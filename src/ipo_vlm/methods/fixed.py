"""Methods without a search, the references every search is measured against:

- ``handcrafted``: the dataset's hand-crafted template (CoOp's, e.g. "a photo of a {}, a type
  of pet."), scored and evaluated as it is;
- ``ensemble80``: the 80 prompt templates CLIP published for ImageNet, ensembled (the mean of
  their normalised class embeddings).

Both score their templates at step 0 like a search's seeds, so their run files, selection,
report and benchmark rows look like any other method's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ipo_vlm.methods.base import MethodContext, MethodOutcome
from ipo_vlm.methods.search import SearchLoop


def _score_once(ctx: MethodContext, templates: list[str]) -> MethodOutcome:
    """Score ``templates`` (with the run's seeds) as step 0 and stop."""
    from ipo_vlm.methods.memory import Memory

    config = replace(ctx.config, optimize=replace(ctx.config.optimize, steps=0))
    memory = Memory(max(1, len(ctx.seeds) + len(templates)))
    outcome = SearchLoop(ctx.record, config, ctx.task.score, memory, ctx.progress, ctx.hook).run([*ctx.seeds, *templates])
    wanted = set(templates)
    outcome.pool = [s for s in outcome.pool if s.template in wanted]
    outcome.complete = outcome.steps_done >= 0
    return outcome


class Handcrafted:
    name = "handcrafted"
    label = "hand-crafted"
    uses_llm = False
    fixed = True

    def run(self, ctx: MethodContext) -> MethodOutcome:
        return _score_once(ctx, [ctx.task.dataset.info.template])

    def replay_pool(self, history: Any, config: Any) -> list[Any]:
        from ipo_vlm.data import load_dataset

        template = load_dataset(config.data.dataset, config.data.data_root).info.template
        return [s for s in history if s.template == template]


class Ensemble80:
    name = "ensemble80"
    label = "80-template ensemble"
    uses_llm = False
    fixed = True

    def run(self, ctx: MethodContext) -> MethodOutcome:
        from ipo_vlm.prompting.bank import clip_imagenet_templates

        templates = [t for t in clip_imagenet_templates() if ctx.task.check(t) is None]
        outcome = _score_once(ctx, templates)
        outcome.ensemble = templates
        return outcome

    def replay_pool(self, history: Any, config: Any) -> list[Any]:
        from ipo_vlm.prompting.bank import clip_imagenet_templates

        bank = set(clip_imagenet_templates())
        return [s for s in history if s.template in bank]


def load_handcrafted(name: str = "", **_: Any) -> Handcrafted:
    return Handcrafted()


def load_ensemble80(name: str = "", **_: Any) -> Ensemble80:
    return Ensemble80()
