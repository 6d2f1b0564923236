"""Word importance by ablation: remove each word (or 2-3-word phrase) of a template in turn,
re-score, and compare with the full template.

Deltas are signed so that positive means the removed words help: ``d_<x>_acc`` = full minus
ablated accuracy, ``d_<x>_loss`` = ablated minus full loss, ``d_hm`` = full minus ablated H.
Scores are exact (no sampling) and go through the run's feature and text caches, so a template
of n words costs about n new prompts per class name, and nothing on a second run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipo_vlm.errors import ConfigError
from ipo_vlm.explain.ablate import ablations, placeholder_index, split_words
from ipo_vlm.io.jsonio import atomic_write_json

log = logging.getLogger(__name__)

EXPLAIN_FORMAT = "ipo-explain/1"
_METRICS = ("train", "base", "novel")


def deltas(full: dict[str, float], ablated: dict[str, float]) -> dict[str, float | None]:
    """Signed changes (positive = the removed words help) between two score dicts."""
    out: dict[str, float | None] = {}
    for part in _METRICS:
        out[f"d_{part}_acc"] = full[f"{part}_acc"] - ablated[f"{part}_acc"]
        fl, al = full.get(f"{part}_loss"), ablated.get(f"{part}_loss")
        out[f"d_{part}_loss"] = al - fl if fl is not None and al is not None else None
    out["d_hm"] = full["hm"] - ablated["hm"]
    return out


def explain_run(
    run: str | Path,
    template: str | None = None,
    phrases: bool = False,
    write: bool = True,
    progress: Callable[..., Any] | None = None,
    dataset: Any = None,
    vlm: Any = None,
) -> dict[str, Any]:
    """Ablate ``template`` (default: the run's best) on the run's own split; returns the
    ``explain.json`` dict and writes it into the run directory unless ``write`` is False.

    ``ConfigError`` for a run without ``result.json`` or a template that is not usable (no
    ``{}``, two of them, or over the token limit): nothing is scored then. ``dataset`` and
    ``vlm`` replace the ones the run's config names (tests pass in-memory stand-ins)."""
    from ipo_vlm.prompting.placeholders import require_template
    from ipo_vlm.runs.run import Run

    if template is not None:
        require_template(template)  # before the features: a typo costs nothing
    started = time.perf_counter()
    opened = Run.open(run, need_result=True)
    result = opened.require_result()
    task = opened.task(dataset=dataset, vlm=vlm)
    template = template if template is not None else result.best_template
    task.require(template)
    words = split_words(template)
    cuts = ablations(template, max_span=3 if phrases else 1)
    baseline = result.baseline.template
    before = task.text_stats
    scored = task.score_parts(list(dict.fromkeys([template, *(c.template for c in cuts)])), progress=progress)
    full = scored[template]
    rows = []
    for cut in cuts:
        s = scored[cut.template]
        rows.append({
            "kind": cut.kind, "start": cut.start, "end": cut.end, "removed": cut.removed,
            "template": cut.template, **s, **deltas(full, s),
        })
    after = task.text_stats
    cost = {
        "templates": len(scored),
        "class_names": len(task.all_classnames),
        "prompts_encoded": after["text_encoded"] - before["text_encoded"],
        "prompts_cached": after["text_hits"] - before["text_hits"],
    }
    out: dict[str, Any] = {
        "format": EXPLAIN_FORMAT,
        "template": template,
        "is_best": template == result.best_template,
        "words": words,
        "placeholder_word": placeholder_index(words),
        "phrases": phrases,
        "full": full,
        "ablations": rows,
        "per_class": {**_per_class(task, template, baseline), "is_best": template == result.best_template},
        "cost": cost,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log.info("explain: %d ablations, %d prompts encoded", len(rows), cost["prompts_encoded"])
    if write:
        try:
            atomic_write_json(opened.path / "explain.json", out)
        except OSError as e:  # a run the user may read but not write: the answer is still worth showing
            log.warning("cannot save explain.json in %s (%s); the table is shown all the same", opened.path, e.strerror or e)
            out["saved"] = False
    return out


def _per_class(task: Any, template: str, baseline: str | None) -> dict[str, Any]:
    """Per-class test accuracy of the template and the baseline (the report's bar chart)."""
    rows = {"template": template, "classes": task.all_classnames,
            "half": ["base"] * len(task.split.base_classnames) + ["novel"] * len(task.split.novel_classnames),
            "accuracy": task.per_class(template)}
    if baseline:
        rows["baseline_template"] = baseline
        rows["baseline_accuracy"] = task.per_class(baseline)
    return rows


def read_explain(run: str | Path) -> dict[str, Any] | None:
    """A run's ``explain.json``, or None when it has none."""
    import json

    path = Path(run) / "explain.json"
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from None
    return raw if isinstance(raw, dict) else None
