"""How far a faster numeric path (float16 / bfloat16) moves a run's scores away from float32.

Two runs of the same settings but the VLM's dtype — bench/scale.py's scripted LLM proposes the
same templates in both, whatever their scores — are joined template by template. Printed:
the rank correlation (Spearman) of training accuracy and of loss over all scored templates,
the largest and mean accuracy difference (points), the share of templates whose accuracy moved
at all, whether both runs select the same template, and the test H of each.

    python bench/agreement.py RUN_FP32 RUN_FP16
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks with ties sharing their average rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):
        tied = x == value
        r[tied] = r[tied].mean()
    return r


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def agreement(reference: str, other: str) -> dict:
    from ipo_vlm.runs.rundir import RunDir

    runs = [RunDir(reference), RunDir(other)]
    scored = [{s.template: s for s in run.history()} for run in runs]
    common = [t for t in scored[0] if t in scored[1]]
    if len(common) < 3:
        raise SystemExit(f"only {len(common)} templates scored in both runs; are they runs of the same settings?")
    acc = np.array([[scored[i][t].accuracy for t in common] for i in (0, 1)])
    loss = np.array([[scored[i][t].loss for t in common] for i in (0, 1)])
    results = [run.read_result() or {} for run in runs]
    diff = 100 * np.abs(acc[0] - acc[1])
    return {
        "templates": len(common), "spearman_acc": spearman(acc[0], acc[1]), "spearman_loss": spearman(loss[0], loss[1]),
        "max_acc_diff_pts": float(diff.max()), "mean_acc_diff_pts": float(diff.mean()), "moved": float(np.mean(diff > 0)),
        "same_best": results[0].get("best_template") == results[1].get("best_template"),
        "best": [r.get("best_template") for r in results], "hm": [r.get("hm") for r in results],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("reference", help="the float32 run directory")
    p.add_argument("other", help="the run directory of the faster path")
    args = p.parse_args(argv)
    a = agreement(args.reference, args.other)
    print(f"templates scored in both: {a['templates']}")
    print(f"rank correlation (Spearman): accuracy {a['spearman_acc']:.4f}, loss {a['spearman_loss']:.4f}")
    print(f"training accuracy difference: max {a['max_acc_diff_pts']:.2f} points, mean {a['mean_acc_diff_pts']:.3f}; "
          f"{100 * a['moved']:.0f}% of templates moved at all")
    print(f"same selected template: {'yes' if a['same_best'] else 'no'} ({a['best'][0]!r} vs {a['best'][1]!r})")
    if None not in a["hm"]:
        print(f"test H: {100 * a['hm'][0]:.2f}% vs {100 * a['hm'][1]:.2f}% ({100 * (a['hm'][1] - a['hm'][0]):+.2f} points)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
