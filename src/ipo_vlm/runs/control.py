"""``--control random``: a random-search pool of the same budget (steps x candidates), scored on
the same split after the method ran and selected by the same rule, so a run says by itself
whether its method beat chance. Recorded in ``RUNDIR/control/`` (its own history and steps,
resumable like the run) and summarised in ``result.json``'s ``control``."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ipo_vlm.methods.base import MethodContext
from ipo_vlm.runs.result import ensemble_rows, ranked_pool
from ipo_vlm.runs.rundir import RunDir

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.engine.task import Task


def run_control(config: "RunConfig", rundir: RunDir, task: "Task", seeds: list[str], hook: Any = None,
                extra_draws: int = 0) -> dict[str, Any]:
    """Run (or resume) the random-search control and evaluate its selected template.
    ``extra_draws`` random bank templates join its seeds (as many as the method's extra seeds,
    so both score the same number of templates)."""
    from ipo_vlm.methods import create_method
    from ipo_vlm.methods.random import draw
    from ipo_vlm.prompting.bank import TemplateBank

    record = RunDir(rundir.path / "control")
    record.path.mkdir(parents=True, exist_ok=True)
    control_config = replace(config, method="random")
    if extra_draws:
        bank = TemplateBank.load(extra=config.optimize.bank)
        seeds = [*seeds, *draw(bank, config, task.dataset.info.domain, 0, extra_draws, seeds)]
    ctx = MethodContext(control_config, task, record, seeds, hook=hook or (lambda event, step: None))
    outcome = create_method("random").run(ctx)
    ranked = ranked_pool(task, control_config, record.history(), outcome)
    best = ranked[0]
    (scores,) = task.evaluate([best.template])
    return {
        "method": "random",
        "best_template": best.template,
        "base_acc": scores.base_acc,
        "novel_acc": scores.novel_acc,
        "hm": scores.hm,
        "templates_scored": len(record.history()),
        "steps_done": max(outcome.steps_done, 0),
        "ensembles": ensemble_rows(task, ranked, [config.optimize.ensemble]),
    }
