"""``--control random``: random search run with every ingredient of the method's run except the
proposals — the same step-0 seeds (the baseline, the hand-crafted template and the seeds made
from the image descriptions), the same memory size, steps x candidates and selection rule — on
the same split, after the method ran. The method's own proposals are the only difference, so
``method - control`` is what the proposals add. Recorded in ``RUNDIR/control/`` (its own history
and steps, resumable like the run) and summarised in ``result.json``'s ``control``."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ipo_vlm.methods.base import MethodContext
from ipo_vlm.runs.result import ensemble_rows, ranked_pool
from ipo_vlm.runs.rundir import RunDir

if TYPE_CHECKING:
    from ipo_vlm.config import RunConfig
    from ipo_vlm.engine.task import Task


def run_control(config: "RunConfig", rundir: RunDir, task: "Task", seeds: list[str], hook: Any = None) -> dict[str, Any]:
    """Run (or resume) the random-search control from the method's own ``seeds`` and evaluate
    its selected template: ``{method, best_template, best_source, best_step, base_acc, novel_acc,
    hm, templates_scored, steps_done, ensembles}``."""
    from ipo_vlm.methods import create_method

    record = RunDir(rundir.path / "control")
    record.path.mkdir(parents=True, exist_ok=True)
    control_config = replace(config, method=config.optimize.control)
    ctx = MethodContext(control_config, task, record, list(seeds), hook=hook or (lambda event, step: None))
    outcome = create_method(config.optimize.control).run(ctx)
    ranked = ranked_pool(task, control_config, record.history(), outcome)
    best = ranked[0]
    (scores,) = task.evaluate([best.template])
    return {
        "method": config.optimize.control,
        "best_template": best.template,
        "best_source": best.source,
        "best_step": best.step,
        "base_acc": scores.base_acc,
        "novel_acc": scores.novel_acc,
        "hm": scores.hm,
        "templates_scored": len(record.history()),
        "steps_done": max(outcome.steps_done, 0),
        "ensembles": ensemble_rows(task, ranked, [config.optimize.ensemble]),
        "pool": [s.template for s in outcome.pool],
    }
