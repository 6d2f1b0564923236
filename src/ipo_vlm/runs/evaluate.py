"""Evaluating a finished (or unfinished) run's template again, on its own dataset and split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ipo_vlm.engine.evaluate import EvalScores, TestSetEvaluator
from ipo_vlm.errors import ConfigError
from ipo_vlm.prompting.placeholders import require_template
from ipo_vlm.runs.rundir import RunDir
from ipo_vlm.runs.select import best_template_of


def evaluate_run(
    run: str | Path,
    templates: Sequence[str] | None = None,
    vlm_spec: str | None = None,
    progress: Callable[..., Any] | None = None,
    vlm_options: dict[str, Any] | None = None,
) -> list[EvalScores]:
    """Evaluate a run's best template (from ``result.json``, else chosen from its history), or
    the given ``templates``, on the run's own dataset and split; ``vlm_spec`` swaps the VLM and
    ``vlm_options`` (device, batch size) override the run's.

    Args:
        run: the run directory.
        templates: templates to evaluate instead of the run's best (each with ``{}``).
        vlm_spec: a VLM spec to use instead of the run's.
        progress: called while test images are encoded.
        vlm_options: VLM options (``device``, ``batch_size``) laid over the run's.

    Returns:
        One ``EvalScores`` (``template``, ``base_acc``, ``novel_acc``, ``hm``, fractions in
        [0, 1]) per template, in order.
    """
    from ipo_vlm.data import load_dataset, load_split
    from ipo_vlm.vlm import create_vlm

    rundir = RunDir(run)
    config = rundir.read_config()["config"]
    if not templates:
        templates = [best_template_of(rundir, config.get("optimize", {}).get("select_on", "train"))]
    for t in templates:
        require_template(t)
    data = config.get("data", {})
    dataset = load_dataset(data.get("dataset", "demo"), data.get("data_root"))
    if not rundir.split_path.exists():
        raise ConfigError(f"{rundir.path} has no split.json yet")
    split = load_split(rundir.split_path, dataset)
    options = {**config.get("vlm_options", {}), **(vlm_options or {})}
    vlm = create_vlm(vlm_spec or config["vlm"], **options)
    return TestSetEvaluator(vlm, dataset, split, progress=progress).evaluate(templates)


def run_rows(run: str | Path) -> list[tuple[str, str]]:
    """``(label, template)`` of what a run is compared with: the ``baseline`` template, the
    dataset's ``handcrafted`` one, and the run's selected (``optimized``) template."""
    from ipo_vlm.data import load_dataset
    from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE

    rundir = RunDir(run)
    config = rundir.read_config()["config"]
    data = config.get("data", {})
    handcrafted = load_dataset(data.get("dataset", "demo"), data.get("data_root")).info.template
    best = best_template_of(rundir, config.get("optimize", {}).get("select_on", "train"))
    return [("baseline", BASELINE_TEMPLATE), ("handcrafted", handcrafted), ("optimized", best)]
