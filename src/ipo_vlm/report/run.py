"""The report of one run directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ipo_vlm.report.plots as plots
from ipo_vlm.report.html import Cell, esc, figure, num, page, pct, points, table, tpl
from ipo_vlm.report.load import ReportInput
from ipo_vlm.scored import ScoredTemplate, rank_key

TOP_K = 5
CHECKPOINTS = 5


def method_label(name: Any) -> str:
    """A method's own label (its name when it has none or is not installed here)."""
    from ipo_vlm.config import DEFAULT_METHOD
    from ipo_vlm.methods.base import traits

    return traits(str(name or DEFAULT_METHOD)).label


def render_run(inp: ReportInput) -> str:
    """The whole HTML page for one run."""
    run = inp.run
    title = f"ipo run: {run.dataset_name}"
    parts = [f"<h1>{esc(title)}</h1>", _meta(inp)]
    parts.append("<h2>Result</h2>")
    parts.append(_headline(run.result_dict or {}) if run.result_dict else '<p class="note">No result.json yet: the run has not finished. The plots show its progress so far.</p>')
    parts.append(_plots(inp))
    parts.append(_importance(inp))
    parts.append(_memory(inp))
    parts.append(_llm(inp))
    parts.append(_descriptions(inp))
    parts.append(_files(inp))
    return page(title, "\n".join(parts))


def _meta(inp: ReportInput) -> str:
    run = inp.run
    r, c = run.result_dict or {}, run.config_dict
    data = c.get("data", {}) if isinstance(c.get("data"), dict) else {}
    llm = c.get("llm", {}).get("spec") if isinstance(c.get("llm"), dict) else None
    split = run.split
    classes = f"{len(split.base_classnames)} base + {len(split.novel_classnames)} novel" if split else None
    items = [
        ("method", method_label(r.get("method") or run.method)),
        ("classes", classes),
        ("VLM", r.get("vlm") or c.get("vlm")),
        ("LLM", r.get("llm") or llm),
        ("shots", r.get("shots", data.get("shots"))),
        ("seed", r.get("seed", data.get("seed"))),
        ("created", run.created),
        ("directory", run.path.name),
    ]
    return '<p class="meta">' + " · ".join(f"{esc(k)}: <strong>{esc(v)}</strong>" for k, v in items if v is not None) + "</p>"


def _row(label: str, rec: dict[str, Any], template: Any, base_hm: Any) -> list[Any]:
    hm = rec.get("hm")
    delta = hm - base_hm if isinstance(hm, (int, float)) and isinstance(base_hm, (int, float)) else None
    return [label, Cell(tpl(template)), Cell(pct(rec.get("base_acc"))), Cell(pct(rec.get("novel_acc"))), Cell(pct(hm)), Cell(points(delta))]


def _headline(r: dict[str, Any]) -> str:
    baseline = r.get("baseline") or {}
    base_hm = baseline.get("hm")
    method = method_label(r.get("method"))
    rows = [_row(f"{method} (selected)", r, r.get("best_template"), base_hm)]
    classes = ["best"]
    if baseline:
        rows.append(_row("baseline", baseline, baseline.get("template"), base_hm))
        classes.append("")
    if r.get("handcrafted"):
        rows.append(_row("hand-crafted", r["handcrafted"], r["handcrafted"].get("template"), base_hm))
        classes.append("")
    seeds = r.get("seeds_alone")
    if isinstance(seeds, dict):
        rows.append(_row("seeds alone", seeds, seeds.get("template"), base_hm))
        classes.append("")
    control = r.get("control")
    if isinstance(control, dict):
        label = f"{method_label(control.get('method')) if control.get('method') else 'control'} (control)"
        rows.append(_row(label, control, control.get("best_template"), base_hm))
        classes.append("")
    for ens in r.get("ensembles") or []:
        if isinstance(ens, dict):
            templates = [str(t) for t in ens.get("templates") or []]
            shown = Cell(f"<details><summary>{len(templates)} templates</summary>" + "<br>".join(tpl(t) for t in templates) + "</details>")
            row = _row(f"ensemble top-{ens.get('k', len(templates))}", ens, "", base_hm)
            row[1] = shown
            rows.append(row)
            classes.append("")
    out = [table(["", "template", "base", "novel", "H", "H vs baseline (points)"], rows, numeric=(2, 3, 4, 5), row_class=classes, id="headline")]
    pills = []
    kept = r.get("baseline_kept")
    if kept is None and baseline.get("template") is not None:
        kept = r.get("best_template") == baseline.get("template")
    if kept is not None:
        pills.append("baseline kept (no candidate beat it)" if kept else "baseline replaced")
    if r.get("complete") is False:
        pills.append(f"stopped early: {r.get('stopped')}")
    if isinstance(control, dict) and isinstance(control.get("diff_hm"), (int, float)):
        pills.append(f"H minus control: {100 * control['diff_hm']:+.1f} points")
    facts = [
        ("selected at step", r.get("best_step")), ("from", r.get("best_source")), ("selected on", r.get("select_on")),
        ("steps", f"{r.get('steps_done')}/{r.get('steps')}" if r.get("steps") is not None else None),
        ("templates scored", r.get("templates_scored")), ("LLM calls", r.get("llm_calls")),
        ("valid new candidates", f"{pct(r.get('valid_rate'), 0)} of {r.get('candidates_returned')}" if r.get("valid_rate") is not None else None),
        ("LLM tokens", f"{num(r.get('llm_tokens_in'))} in, {num(r.get('llm_tokens_out'))} out" if r.get("llm_tokens_in") is not None else None),
        ("minutes", num(r.get("minutes"), 1) if r.get("minutes") is not None else None),
    ]
    out.append("<p>" + "".join(f'<span class="pill">{esc(p)}</span>' for p in pills) +
               " · ".join(f"{esc(k)}: <strong>{esc(v)}</strong>" for k, v in facts if v is not None) + "</p>")
    return "\n".join(out)


def _plots(inp: ReportInput) -> str:
    figs = []
    run = inp.run
    r = run.result_dict or {}
    if run.history_records:
        figs.append(figure(plots.progress_plot(run.history_records), "Best training (and validation) accuracy found up to each step.", "accuracy per step"))
        selected = r.get("best_template")
        baseline = (r.get("baseline") or {}).get("template")
        figs.append(figure(plots.candidates_plot(run.history_records, selected, baseline),
                           "Every scored template: training accuracy against loss, coloured by step; the star is the selected one.",
                           "candidates"))
    per_class = (inp.explain or {}).get("per_class")
    if isinstance(per_class, dict) and per_class.get("classes"):
        figs.append(figure(plots.per_class_plot(per_class), "Test accuracy of each class: baseline against the explained template.", "per-class accuracy"))
        note = ""
    else:
        note = '<p class="note">Per-class accuracy: run <code>ipo explain RUNDIR</code> to add it to this report.</p>'
    if any(s.step > 0 for s in run.steps):
        figs.append(figure(plots.cost_plot([dict(s.__dict__) for s in run.steps], _seconds_per_step(run.calls)), "LLM tokens and LLM seconds per step.", "tokens per step"))
    if not figs:
        return '<h2>Plots</h2><p class="note">No scored templates yet.</p>'
    return '<h2>Plots</h2><div class="plots">' + "".join(figs) + "</div>" + note


def _seconds_per_step(calls: Sequence[dict[str, Any]]) -> dict[int, float]:
    out: dict[int, float] = {}
    for c in calls:
        if isinstance(c.get("step"), int) and isinstance(c.get("latency_s"), (int, float)):
            out[c["step"]] = out.get(c["step"], 0.0) + float(c["latency_s"])
    return out


def _importance(inp: ReportInput) -> str:
    e = inp.explain
    if not e or not e.get("ablations"):
        return '<h2>Word importance</h2><p class="note">Run <code>ipo explain RUNDIR</code> to see which words of the template matter.</p>'
    rows = e["ablations"]
    scale = max((abs(float(x.get("d_hm") or 0)) for x in rows), default=0.0) or 1.0
    body = []
    for x in rows:
        d = float(x.get("d_hm") or 0)
        bar = Cell(f'<span class="hbar{" neg" if d < 0 else ""}" style="width:{round(120 * abs(d) / scale)}px"></span>')
        body.append([Cell(tpl(x.get("removed"))), Cell(points(x.get("d_train_acc"))),
                     num(x.get("d_train_loss"), 3) if x.get("d_train_loss") is not None else "",
                     Cell(points(x.get("d_base_acc"))), Cell(points(x.get("d_novel_acc"))), Cell(points(x.get("d_hm"))), bar])
    full = e.get("full", {})
    out = [
        "<h2>Word importance</h2>",
        f"<p>Template {tpl(e.get('template'))}: train {pct(full.get('train_acc'))}, base {pct(full.get('base_acc'))}, "
        f"novel {pct(full.get('novel_acc'))}, H {pct(full.get('hm'))}. Each row removes the words and re-scores; "
        "changes are in points, positive when the removed words help. The word holding the class placeholder is never removed.</p>",
        table(["removed", "train acc", "train loss", "base", "novel", "H", "H change"], body, numeric=(1, 2, 3, 4, 5), id="importance"),
        '<div class="plots">' + figure(plots.importance_plot(e), "Change in test H and training accuracy when each word is removed.", "word importance") + "</div>",
    ]
    cost = e.get("cost") or {}
    if cost:
        out.append(f'<p class="note">{esc(cost.get("templates"))} templates scored; {esc(cost.get("prompts_encoded"))} prompts encoded, '
                   f'{esc(cost.get("prompts_cached"))} from the cache.</p>')
    return "\n".join(out)


def ranked(history: Sequence[dict[str, Any]], upto: int, k: int = TOP_K) -> list[dict[str, Any]]:
    """The top ``k`` distinct templates scored up to step ``upto``: the scored order
    (:func:`ipo_vlm.scored.rank_key` by training accuracy, then lower loss), then the earlier step."""
    seen: set[str] = set()
    out = []
    pool = sorted((r for r in history if int(r["step"]) <= upto), key=lambda r: int(r["step"]))
    scored = [ScoredTemplate.from_record(r) for r in pool]
    for i in sorted(range(len(pool)), key=lambda i: rank_key(scored[i]), reverse=True):
        rec = pool[i]
        if rec["template"] in seen:
            continue
        seen.add(rec["template"])
        out.append(rec)
        if len(out) == k:
            break
    return out


def checkpoints(steps: Sequence[int], n: int = CHECKPOINTS) -> list[int]:
    """Up to ``n`` steps spread evenly from the first to the last."""
    steps = sorted(set(steps))
    if len(steps) <= n:
        return steps
    return sorted({steps[round(i * (len(steps) - 1) / (n - 1))] for i in range(n)})


def _memory(inp: ReportInput) -> str:
    history = inp.run.history_records
    if not history:
        return ""
    out = ["<h2>Memory over time</h2>", f"<p>The top {TOP_K} templates by training accuracy after selected steps.</p>"]
    for s in checkpoints([int(r.get("step", 0)) for r in history]):
        rows = [[i + 1, Cell(tpl(rec["template"])), Cell(pct(rec["train_acc"])), num(float(rec["train_loss"]), 3), rec["step"], rec.get("source", "")]
                for i, rec in enumerate(ranked(history, s))]
        out.append(f"<h3>after step {esc(s)}</h3>")
        out.append(table(["#", "template", "train acc", "train loss", "found at step", "source"], rows, numeric=(0, 2, 3, 4)))
    return "\n".join(out)


def _llm(inp: ReportInput) -> str:
    run = inp.run
    r = run.result_dict or {}
    rejections = r.get("rejections")
    if not isinstance(rejections, dict):
        rejections = {}
        for s in run.steps:
            for reason, n in (s.rejected or {}).items():
                rejections[reason] = rejections.get(reason, 0) + int(n)
    out = ["<h2>LLM</h2>", "<h3>Rejected candidates by reason</h3>"]
    if rejections:
        out.append(table(["reason", "candidates"], sorted(rejections.items(), key=lambda kv: -int(kv[1])), numeric=(1,), id="rejections"))
    else:
        out.append('<p class="note">No candidate was rejected.</p>')
    seconds = _seconds_per_step(run.calls)
    rows = [[s.step, s.llm_calls, s.returned, s.valid, num(s.tokens_in), num(s.tokens_out),
             f"{seconds[s.step]:.2f}" if s.step in seconds else "",
             ", ".join(f"{k}: {v}" for k, v in (s.rejected or {}).items())] for s in run.steps]
    if rows:
        out.append(f"<details><summary>Tokens and time per step ({len(rows)} steps)</summary>")
        out.append(table(["step", "calls", "returned", "valid", "tokens in", "tokens out", "LLM seconds", "rejected"], rows,
                         numeric=(0, 1, 2, 3, 4, 5, 6), id="steps"))
        out.append("</details>")
    return "\n".join(out)


def _descriptions(inp: ReportInput) -> str:
    run = inp.run
    if not run.descriptions:
        return ""
    cap = run.config_dict.get("captioner", {}) if isinstance(run.config_dict.get("captioner"), dict) else {}
    shown = _selected_texts(run.descriptions, cap)
    rows = [[d.get("classname", ""), Cell(tpl(d.get("text"))), d.get("masked", 0), "yes" if d.get("text") in shown else ""] for d in run.descriptions]
    return "\n".join([
        "<h2>Image descriptions</h2>",
        f"<p>{len(shown)} of {len(run.descriptions)} descriptions (class names masked) fitted the meta-prompt's budget "
        f"of {esc(cap.get('budget_tokens', '?'))} tokens; the class column is for the reader only.</p>",
        "<details><summary>All descriptions</summary>",
        table(["class", "description (as masked)", "masks", "in prompt"], rows, numeric=(2,), id="descriptions"),
        "</details>",
    ])


def _selected_texts(descriptions: Sequence[dict[str, Any]], cap: dict[str, Any]) -> set[str]:
    """The descriptions the meta-prompt held (the optimizer's own selection rule)."""
    from ipo_vlm.captioner.descriptions import Description, DescriptionSet, select_for_prompt
    from ipo_vlm.errors import ConfigError

    items = [Description(str(d.get("ref", "")), int(d.get("label", 0)), str(d.get("classname", "")), str(d.get("text", "")), int(d.get("masked", 0)))
             for d in descriptions]
    try:
        chosen = select_for_prompt(DescriptionSet(items, 0, len(items), 0, ""), int(cap.get("budget_tokens", 600)), str(cap.get("selection", "round_robin")))
    except (ConfigError, ValueError):
        return set()
    return set(chosen)


def _files(inp: ReportInput) -> str:
    rows = [[name, num(size)] for name, size in inp.sizes.items()]
    config = json.dumps(inp.run.config_dict, indent=2, ensure_ascii=False, sort_keys=True)
    return "\n".join([
        "<h2>Run files</h2>",
        table(["file", "bytes"], rows, numeric=(1,), id="files"),
        f"<details><summary>config.json</summary><pre>{esc(config)}</pre></details>",
    ])
