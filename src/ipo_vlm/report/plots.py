"""The report's plots: matplotlib figures rendered to base64 PNG for inline ``<img>`` tags.

Figures are drawn on the Agg canvas directly (no pyplot, no global backend switch) with
mathtext off, so a class name such as ``$x$`` or ``<script>`` is drawn as the characters it is."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ipo_vlm.errors import ConfigError

BLUE, ORANGE, GREY, RED = "#4c78a8", "#f58518", "#9aa3b1", "#e45756"


@contextmanager
def _figure(width: float = 6.4, height: float = 3.6) -> Iterator[Any]:
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("ipo report needs matplotlib: pip install 'ipo-vlm[report]'") from None
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}):
        fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        yield fig


def _integer_steps(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def to_png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def progress_plot(history: Sequence[dict[str, Any]]) -> str:
    """Best training (and validation) accuracy found up to each step, with each step's own best."""
    steps = sorted({int(r["step"]) for r in history})
    best_train, step_best, best_val = [], [], []
    run_train = run_val = float("-inf")
    for s in steps:
        rows = [r for r in history if int(r["step"]) == s]
        top = max(float(r["train_acc"]) for r in rows)
        run_train = max(run_train, top)
        best_train.append(100 * run_train)
        step_best.append(100 * top)
        vals = [float(r["val_acc"]) for r in rows if r.get("val_acc") is not None]
        if vals:
            run_val = max(run_val, max(vals))
        best_val.append(100 * run_val if run_val > float("-inf") else None)
    with _figure() as fig:
        ax = fig.add_subplot()
        ax.plot(steps, step_best, ".", color=GREY, markersize=4, label="best of the step (train)")
        ax.step(steps, best_train, where="post", color=BLUE, linewidth=2, label="best so far (train)")
        if any(v is not None for v in best_val):
            xs = [s for s, v in zip(steps, best_val) if v is not None]
            ax.step(xs, [v for v in best_val if v is not None], where="post", color=ORANGE, linewidth=1.6, label="best so far (val)")
        ax.set_xlabel("step")
        _integer_steps(ax)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        return to_png(fig)


def candidates_plot(history: Sequence[dict[str, Any]], selected: str | None, baseline: str | None) -> str:
    """Every scored template as a point (training accuracy vs loss), coloured by step."""
    with _figure() as fig:
        ax = fig.add_subplot()
        acc = [100 * float(r["train_acc"]) for r in history]
        loss = [float(r["train_loss"]) for r in history]
        pts = ax.scatter(loss, acc, c=[int(r["step"]) for r in history], cmap="viridis", s=14, alpha=0.8, linewidths=0)
        fig.colorbar(pts, ax=ax, label="step", pad=0.01)
        for template, marker, colour, label in ((baseline, "X", "black", "baseline"), (selected, "*", RED, "selected")):
            hits = [r for r in history if template is not None and r["template"] == template]
            if hits:
                r = hits[0]
                ax.scatter([float(r["train_loss"])], [100 * float(r["train_acc"])], marker=marker, s=160 if marker == "*" else 70,
                           color=colour, edgecolors="white", linewidths=0.8, zorder=3, label=label)
        ax.set_xlabel("training loss (cross-entropy)")
        ax.set_ylabel("training accuracy (%)")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower left", fontsize=8)
        return to_png(fig)


def per_class_plot(per_class: dict[str, Any]) -> str:
    """Test accuracy of each class, baseline vs the explained template."""
    classes = [str(c) for c in per_class["classes"]]
    best = [100 * (a or 0.0) for a in per_class["accuracy"]]
    base = per_class.get("baseline_accuracy")
    width = max(6.4, 0.45 * len(classes) + 1.5)
    with _figure(width=min(width, 16), height=3.8) as fig:
        ax = fig.add_subplot()
        xs = list(range(len(classes)))
        w = 0.4 if base else 0.7
        if base:
            ax.bar([x - w / 2 for x in xs], [100 * (a or 0.0) for a in base], w, color=GREY, label="baseline")
        ax.bar([x + (w / 2 if base else 0) for x in xs], best, w, color=BLUE, label="best" if per_class.get("is_best") else "explained template")
        halves = per_class.get("half") or []
        if "novel" in halves and "base" in halves:
            cut = halves.index("novel") - 0.5
            ax.axvline(cut, color="black", linewidth=0.8, linestyle="--")
            ax.text(cut - 0.1, 101, "base", ha="right", va="bottom", fontsize=8)
            ax.text(cut + 0.1, 101, "novel", ha="left", va="bottom", fontsize=8)
        ax.set_xticks(xs)
        names = [c if len(c) <= 22 else c[:21] + "…" for c in classes]
        crowded = sum(len(c) + 2 for c in names) > 9 * width
        ax.set_xticklabels(names, rotation=40 if crowded else 0, ha="right" if crowded else "center")
        ax.set_ylim(0, 108)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        return to_png(fig)


def cost_plot(steps: Sequence[dict[str, Any]], seconds: dict[int, float]) -> str:
    """LLM tokens per step (stacked in/out) and the LLM's seconds per step."""
    rows = [s for s in steps if int(s["step"]) > 0]
    xs = [int(s["step"]) for s in rows]
    tin = [int(s.get("tokens_in") or 0) for s in rows]
    tout = [int(s.get("tokens_out") or 0) for s in rows]
    dense = len(xs) > 60  # bars would merge: areas and a thin line instead
    with _figure(height=3.2) as fig:
        ax = fig.add_subplot()
        if dense:
            ax.stackplot(xs, tin, tout, colors=[BLUE, ORANGE], labels=["tokens in", "tokens out"], alpha=0.9)
        else:
            ax.bar(xs, tin, color=BLUE, label="tokens in", width=0.8)
            ax.bar(xs, tout, bottom=tin, color=ORANGE, label="tokens out", width=0.8)
        ax.set_xlabel("step")
        _integer_steps(ax)
        ax.set_ylabel("LLM tokens")
        ax.set_ylim(0, 1.3 * (max([a + b for a, b in zip(tin, tout)], default=0) or 1))
        if seconds:
            ax2 = ax.twinx()
            ax2.plot(xs, [seconds.get(x, 0.0) for x in xs], color="black", linewidth=0.6 if dense else 1, alpha=0.6 if dense else 1,
                     marker="" if dense else ".", markersize=3, label="LLM seconds")
            ax2.set_ylabel("seconds")
            ax2.set_ylim(0, 1.3 * (max(seconds.values(), default=0.0) or 1.0))  # a cached or scripted LLM takes ~0 s
            ax2.spines["right"].set_visible(True)
        handles = [h for a in fig.axes for h in a.get_legend_handles_labels()[0]]
        labels = [lab for a in fig.axes for lab in a.get_legend_handles_labels()[1]]
        ax.legend(handles, labels, loc="upper left", fontsize=8, ncols=3, framealpha=0.9)
        return to_png(fig)


def importance_plot(explained: dict[str, Any]) -> str:
    """Change in H (points) when each word is removed, words top to bottom in template order."""
    rows = [r for r in explained.get("ablations", []) if r.get("kind") == "word"] or list(explained.get("ablations", []))
    labels = [str(r["removed"]) for r in rows]
    vals = [100 * float(r["d_hm"]) for r in rows]
    train = [100 * float(r["d_train_acc"]) for r in rows]
    with _figure(height=max(2.4, 0.32 * len(rows) + 1.2)) as fig:
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        ax.barh([y - 0.2 for y in ys], vals, 0.4, color=[BLUE if v >= 0 else RED for v in vals])
        ax.barh([y + 0.2 for y in ys], train, 0.4, color=GREY)
        ax.set_yticks(ys)
        ax.set_yticklabels([lab if len(lab) <= 30 else lab[:29] + "…" for lab in labels])
        ax.invert_yaxis()
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel("change when removed (points; + = the word helps)")
        ax.grid(axis="x", alpha=0.3)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color=BLUE, label="test H (red: removal helps)"), Patch(color=GREY, label="train accuracy")],
                  loc="best", fontsize=8)
        return to_png(fig)


def bench_plot(groups: dict[str, dict[str, float]], methods: Sequence[str]) -> str:
    """Mean H per dataset (groups) and method (bars within a group)."""
    datasets = list(groups)
    with _figure(width=max(6.4, min(16, 1.2 * len(datasets) * max(1, len(methods)) / 2 + 2)), height=3.8) as fig:
        ax = fig.add_subplot()
        w = 0.8 / max(1, len(methods))
        palette = [BLUE, ORANGE, "#54a24b", RED, "#72b7b2", "#b279a2", "#ff9da6", GREY]
        for m, method in enumerate(methods):
            xs = [d + (m - (len(methods) - 1) / 2) * w for d in range(len(datasets))]
            ax.bar(xs, [100 * groups[ds].get(method, 0.0) for ds in datasets], w, color=palette[m % len(palette)], label=method)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels([d if len(d) <= 22 else d[:21] + "…" for d in datasets], rotation=30 if len(datasets) > 5 else 0,
                           ha="right" if len(datasets) > 5 else "center")
        ax.set_ylabel("H (%)")
        ax.set_ylim(0, 118)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncols=min(4, max(1, len(methods))), loc="upper center")
        return to_png(fig)
