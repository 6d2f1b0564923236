"""Evaluating a finished (or unfinished) run's template again, on its own dataset and split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ipo_vlm.engine.evaluate import EvalScores
from ipo_vlm.prompting.placeholders import require_template
from ipo_vlm.runs.run import Run


def evaluate_run(
    run: str | Path | Run,
    templates: Sequence[str] | None = None,
    vlm_spec: str | None = None,
    progress: Callable[..., Any] | None = None,
    vlm_options: dict[str, Any] | None = None,
    data_root: str | None = None,
) -> list[EvalScores]:
    """Evaluate a run's best template (from ``result.json``, else the best of its pool so far),
    or the given ``templates``, on the run's own dataset and split; ``vlm_spec`` swaps the VLM
    and ``vlm_options`` (device, batch size) override the run's.

    Args:
        run: the run directory (or an opened :class:`~ipo_vlm.runs.run.Run`).
        templates: templates to evaluate instead of the run's best (each with ``{}``).
        vlm_spec: a VLM spec to use instead of the run's.
        progress: called while test images are encoded.
        vlm_options: VLM options (``device``, ``batch_size``) laid over the run's.
        data_root: where the run's dataset is now, if it moved (the split's files are looked up there).

    Returns:
        One ``EvalScores`` (``template``, ``base_acc``, ``novel_acc``, ``hm``, fractions in
        [0, 1]) per template, in order.
    """
    opened = run if isinstance(run, Run) else Run.open(run)
    if not templates:
        templates = [opened.best_template]
    for t in templates:
        require_template(t)
    task = opened.task(dataset=opened.dataset(data_root), vlm_spec=vlm_spec, vlm_options=vlm_options)
    return task.evaluate(templates, progress=progress)


def run_rows(run: str | Path | Run, data_root: str | None = None) -> list[tuple[str, str]]:
    """``(label, template)`` of what a run is compared with: the ``baseline`` template, the
    dataset's ``handcrafted`` one, and the run's selected (``optimized``) template
    (``data_root``: where the run's dataset is now, if it moved)."""
    from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE

    opened = run if isinstance(run, Run) else Run.open(run)
    handcrafted = opened.dataset(data_root).info.template
    return [("baseline", BASELINE_TEMPLATE), ("handcrafted", handcrafted), ("optimized", opened.best_template)]
