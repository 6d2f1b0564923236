"""How stable is the shifted stand-in's headroom? Train ``demo:fashion-shifted`` with several
training seeds (and any training flags), then print each seed's template summary on the shifted
condition's test images (out of focus; ``--dataset demo-sketch`` for sketches): "a photo of a
{}."'s H, the best of the generic templates plus the obvious medium template ("a blurry photo of
a {}.") and its gain (the headroom), the wrong-medium penalties and the spread.

    .venv/bin/python bench/standin_seeds.py --seeds 0-2 [--source debian] [--dataset demo-sketch] [-- --shifted-share 0.05 --epochs 3]

Flags after ``--`` go to ``scripts/train_demo_vlm_shifted.py``. Weights are written under
``--out`` (default: a temporary folder) and reused when present."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from controls import seeds_arg  # noqa: E402  (a sibling in bench/)


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=seeds_arg, default=seeds_arg("0-2"), help="e.g. 0-2 or 0,1,5")
    ap.add_argument("--source", choices=("demo", "debian"), default="debian")
    ap.add_argument("--dataset", default=None, help="the shifted demo variant (default: demo-blurry)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    seeds = args.seeds
    out = args.out or Path(tempfile.mkdtemp(prefix="standin-"))

    import torch

    from demo_templates import read_templates, shifted_summary, shifted_templates, shifted_test, shifted_variant, template_table
    from ipo_vlm.vlm.demo_models import load_demo

    torch.set_num_threads(2)
    variant = shifted_variant(args.dataset)
    pixels, labels = shifted_test(args.source, variant)
    generic = read_templates()
    templates = shifted_templates(variant, generic)
    wrong = variant.wrong_medium_templates
    print(f"training flags: {' '.join(extra) or '(defaults)'}; {args.source} {variant.rendering} test images "
          f"({len(labels)}); H in %")
    print("| seed | 'a photo of a {}.' | best (generic + domain) | headroom | " +
          " | ".join(f"{t!r}" for t in wrong) + " | generic spread |")
    print("|---" * (5 + len(wrong)) + "|")
    headrooms = []
    for seed in seeds:
        weights = out / f"seed{seed}" / "towers.safetensors"
        if not weights.exists():
            subprocess.run([sys.executable, str(ROOT / "scripts" / "train_demo_vlm_shifted.py"), "--seed", str(seed),
                            "--out", str(weights.parent), "--no-check", *extra], check=True, capture_output=True)
        vlm = load_demo("fashion-shifted", weights=weights)
        s = shifted_summary(template_table(vlm, vlm.encode_pixels(pixels), labels, templates), generic, variant)
        headrooms.append(100 * s["headroom"])
        penalties = " | ".join(f"{-100 * p:+.1f}" for p in s["wrong_penalty"].values())
        print(f"| {seed} | {100 * s['baseline_h']:.1f} | {s['best']!r} | {100 * s['headroom']:+.1f} | {penalties} | {100 * s['generic_spread']:.1f} |")
    if len(headrooms) > 1:
        print(f"headroom over seeds: {statistics.mean(headrooms):+.1f} ± {statistics.stdev(headrooms):.1f} (min {min(headrooms):+.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
