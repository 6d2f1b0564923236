"""Synthetic run and benchmark directories, written as plain files (no model, no LLM).

They hold every file a finished run writes, with plausible numbers, so report code can be
tested and timed at any size (``synthetic_run(path, steps=500)``) in well under a second, and
optional fields can be switched on to see that they are rendered."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipo_vlm.io.jsonio import atomic_write_json

BASELINE = "a photo of a {}."
CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
_ADJ = ("bright", "dark", "small", "large", "close-up", "blurry", "clean", "cropped", "studio", "folded", "worn", "grayscale")
_NOUNS = ("photo", "picture", "image", "snapshot", "render", "product shot")


def _h(b: float, n: float) -> float:
    return 2 * b * n / (b + n) if b + n else 0.0


def _scores(rng: random.Random, level: float) -> dict[str, float]:
    b, n = min(1.0, level + rng.uniform(-0.05, 0.02)), min(1.0, level + 0.1 + rng.uniform(-0.05, 0.03))
    return {"base_acc": b, "novel_acc": n, "hm": _h(b, n)}


def _write_lines(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def synthetic_run(
    path: str | Path,
    steps: int = 20,
    candidates: int = 5,
    seed: int = 0,
    classnames: Sequence[str] = CLASSES,
    extra_templates: Sequence[str] = (),
    optional_fields: bool = True,
    explain: bool = True,
    result: bool = True,
) -> Path:
    """Write a finished run of ``steps`` x ``candidates`` scored templates into ``path``.

    ``extra_templates`` are scored at step 1 and the first becomes the selected template (to
    show how the report renders untrusted strings); ``optional_fields`` adds ``method``,
    ``baseline_kept``, ``control`` and ``ensembles`` to ``result.json``."""
    from ipo_vlm.config import preset

    rng = random.Random(seed)
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    half = len(classnames) // 2
    base, novel = list(classnames[:half]), list(classnames[half:])
    config = preset("demo").to_dict()
    config["optimize"]["steps"] = steps
    atomic_write_json(p / "config.json", {"config": config, "prompt_version": "synthetic", "versions": {}, "created": "2026-01-01T00:00:00+00:00"})
    atomic_write_json(p / "split.json", {"format": "ipo-split/1", "dataset": "demo", "shots": 16, "seed": 1,
                                         "base_classnames": base, "novel_classnames": novel})
    history = [{"step": 0, "template": BASELINE, "train_acc": 0.80, "train_loss": 0.60, "source": "seed", "llm_call_id": None,
                "val_acc": 0.75, "val_loss": 0.7}]
    steps_rows = [{"step": 0, "llm_calls": 0, "returned": 1, "valid": 1, "rejected": {}, "tokens_in": 0, "tokens_out": 0}]
    calls = []
    for step in range(1, steps + 1):
        call = f"{seed:04x}{step:012x}"
        tin, tout = 350 + 3 * min(step, 20) + rng.randint(0, 20), 40 + rng.randint(0, 20)
        calls.append({"id": call, "time": 1.7e9 + 10 * step, "model": "scripted:synthetic", "tokens_in": tin, "tokens_out": tout,
                      "latency_s": round(rng.uniform(5, 15), 3), "cache_hit": False, "error": None, "sample_index": 0, "step": step})
        found = [t for t in extra_templates] if step == 1 else []
        while len(found) < candidates:
            found.append(f"a {rng.choice(_ADJ)} {rng.choice(_ADJ)} {rng.choice(_NOUNS)} of a {{}} #{step}.{len(found)}")
        for t in found:
            level = 0.78 + 0.08 * (step / steps) ** 0.5 + rng.uniform(-0.04, 0.02)
            history.append({"step": step, "template": t, "train_acc": round(level, 4), "train_loss": round(1.2 - level + rng.uniform(0, 0.1), 4),
                            "source": "llm", "llm_call_id": call, "val_acc": round(level - 0.05, 4), "val_loss": 0.7})
        rejected = {"already scored": 1} if step % 3 == 0 else {}
        steps_rows.append({"step": step, "llm_calls": 1, "returned": candidates + len(rejected), "valid": candidates,
                           "rejected": rejected, "tokens_in": tin, "tokens_out": tout})
    _write_lines(p / "history.jsonl", history)
    _write_lines(p / "steps.jsonl", steps_rows)
    _write_lines(p / "llm_calls.jsonl", calls)
    _write_lines(p / "descriptions.jsonl", [
        {"ref": f"train/{i}", "label": i % len(base), "classname": base[i % len(base)], "text": f"A photo of a {rng.choice(_ADJ)} item.",
         "masked": 0, "model": "interrogate:synthetic"} for i in range(3 * len(base))])
    best = history[1] if extra_templates else max(history, key=lambda r: (r["train_acc"], -r["train_loss"]))
    if not result:
        return p
    res: dict[str, Any] = {
        "best_template": best["template"], **_scores(rng, 0.78), "best_train_acc": best["train_acc"], "best_train_loss": best["train_loss"],
        "best_val_acc": best["val_acc"], "best_step": best["step"], "best_source": best["source"], "select_on": "train",
        "baseline": {"template": BASELINE, **_scores(rng, 0.75)},
        "handcrafted": {"template": "a photo of a {}, a type of clothing.", **_scores(rng, 0.75)},
        "steps_done": steps, "steps": steps, "complete": True, "stopped": "done", "templates_scored": len(history),
        "llm_tokens_in": sum(c["tokens_in"] for c in calls), "llm_tokens_out": sum(c["tokens_out"] for c in calls),
        "llm_calls": steps, "candidates_returned": sum(s["returned"] for s in steps_rows[1:]),
        "candidates_valid": steps * candidates, "valid_rate": steps * candidates / max(1, sum(s["returned"] for s in steps_rows[1:])),
        "rejections": {"already scored": steps // 3}, "description_maskings": 0, "minutes": round(steps * 0.17, 3),
        "dataset": "demo", "shots": 16, "seed": 1, "vlm": "demo:fashion", "llm": "scripted:synthetic",
    }
    if optional_fields:
        control = {"method": "random", "best_template": "a random snapshot of a {}.", **_scores(rng, 0.77)}
        control["diff_hm"] = res["hm"] - control["hm"]
        top = [r["template"] for r in sorted(history, key=lambda r: -r["train_acc"])[:5]]
        # fixed numbers: drawing them would shift every later draw of existing synthetic runs
        seeds_alone = {"template": BASELINE, "kind": "baseline", "base_acc": 0.8, "novel_acc": 0.72, "hm": 2 * 0.8 * 0.72 / 1.52}
        res.update({"method": "ipo", "baseline_kept": False, "control": control, "seeds_alone": seeds_alone,
                    "ensembles": [{"k": 5, "templates": top, **_scores(rng, 0.79)}]})
    atomic_write_json(p / "result.json", res)
    if explain:
        atomic_write_json(p / "explain.json", synthetic_explain(res["best_template"], base, novel, rng))
    return p


def synthetic_explain(template: str, base: Sequence[str], novel: Sequence[str], rng: random.Random) -> dict[str, Any]:
    """An ``explain.json`` for ``template`` with made-up deltas and per-class accuracies."""
    words = template.split()
    keep = next(i for i, w in enumerate(words) if "{}" in w)
    full = {"train_acc": 0.85, "train_loss": 0.5, "base_acc": 0.8, "base_loss": 0.6, "novel_acc": 0.9, "novel_loss": 0.4, "hm": _h(0.8, 0.9)}
    rows = []
    for i, w in enumerate(words):
        if i == keep:
            continue
        d = {f"d_{k}": rng.uniform(-0.03, 0.04) for k in ("train_acc", "base_acc", "novel_acc", "hm")}
        d.update({"d_train_loss": rng.uniform(-0.02, 0.03), "d_base_loss": 0.0, "d_novel_loss": 0.0})
        rows.append({"kind": "word", "start": i, "end": i + 1, "removed": w, "template": " ".join(words[:i] + words[i + 1:]), **d})
    classes = list(base) + list(novel)
    return {
        "format": "ipo-explain/1", "template": template, "is_best": True, "words": words, "placeholder_word": keep, "phrases": False,
        "full": full, "ablations": rows,
        "per_class": {"template": template, "is_best": True, "classes": classes, "half": ["base"] * len(base) + ["novel"] * len(novel),
                      "accuracy": [round(rng.uniform(0.4, 1.0), 3) for _ in classes], "baseline_template": BASELINE,
                      "baseline_accuracy": [round(rng.uniform(0.4, 1.0), 3) for _ in classes]},
        "cost": {"templates": len(rows) + 1, "class_names": len(classes), "prompts_encoded": len(rows) * len(classes), "prompts_cached": 0},
        "seconds": 0.1,
    }


def synthetic_bench(path: str | Path, datasets: Sequence[str] = ("demo", "eurosat"), methods: Sequence[str] = ("ipo", "random", "handcrafted"),
                    seeds: Sequence[int] = (1, 2), steps: int = 5, failed: int = 1) -> Path:
    """A benchmark directory: one synthetic run per cell, ``cells.jsonl``, ``table.csv`` and
    ``table.md``; the last ``failed`` cells are recorded as failed (no run directory)."""
    rng = random.Random(7)
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    cells = []
    grid = [(d, m, s) for d in datasets for m in methods for s in seeds]
    for i, (ds, method, seed) in enumerate(grid):
        name = f"{ds}-16shot-seed{seed}-{method}"
        ok = i < len(grid) - failed
        cell: dict[str, Any] = {"cell_id": i, "name": name, "dataset": ds, "shots": 16, "seed": seed, "method": method,
                                "rundir": f"cells/{name}", "status": "done" if ok else "failed", "error": None if ok else "BackendError: server unreachable"}
        if ok:
            run = synthetic_run(p / "cells" / name, steps=steps, seed=i, explain=False)
            res = json.loads((run / "result.json").read_text(encoding="utf-8"))
            cell.update({k: res[k] for k in ("base_acc", "novel_acc", "hm", "llm_tokens_in", "llm_tokens_out")})
            cell.update({"cost_usd": round(rng.uniform(0.001, 0.01), 5), "seconds": round(rng.uniform(30, 300), 1)})
        else:
            cell.update({"base_acc": None, "novel_acc": None, "hm": None, "llm_tokens_in": 0, "llm_tokens_out": 0, "cost_usd": 0.0, "seconds": 2.0})
        cells.append(cell)
    _write_lines(p / "cells.jsonl", cells)
    lines = ["dataset,method,seeds,base,novel,hm"]
    for ds in datasets:
        for m in methods:
            done = [c for c in cells if c["dataset"] == ds and c["method"] == m and c["status"] == "done"]
            if done:
                mean = {k: sum(c[k] for c in done) / len(done) for k in ("base_acc", "novel_acc", "hm")}
                lines.append(f"{ds},{m},{len(done)},{100 * mean['base_acc']:.2f},{100 * mean['novel_acc']:.2f},{100 * mean['hm']:.2f}")
        lines.append(f"{ds},IPO (paper reference),3,,,")
    (p / "table.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (p / "table.md").write_text("| dataset | method | H |\n|---|---|---|\n", encoding="utf-8")
    return p
