"""Token-limit checks at ImageNet scale: counting a template's prompts by parts (the text around
the placeholder once, each class name once per run) against tokenising every prompt, side by
side, with CLIP's real tokenizer. Both give the same counts (checked here); printed are the
seconds per candidate checked against all 1000 classes and the ratio.

    python bench/tokens.py [--templates 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--templates", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    from ipo_vlm.prompting.bank import TemplateBank
    from ipo_vlm.prompting.placeholders import fill
    from ipo_vlm.testing.real_clip import build_real_clip, imagenet_classnames
    from ipo_vlm.vlm import create_vlm

    vlm = create_vlm(f"hf:{build_real_clip(tempfile.mkdtemp(prefix='ipo-tokens-'), 'tiny')}")
    names = list(imagenet_classnames())
    templates = TemplateBank.load().sample(args.templates, random.Random(0), "object")
    vlm.count_filled_tokens(templates[0], names)  # the class names' own counts, once per run

    def whole() -> list[list[int]]:
        return [vlm.count_tokens([fill(t, c) for c in names]) for t in templates]

    def by_parts() -> list[list[int]]:
        return [vlm.count_filled_tokens(t, names) for t in templates]

    best = {}
    for _ in range(args.repeats):  # alternated, so both see the same machine load
        for name, fn in (("every prompt", whole), ("by parts", by_parts)):
            started = time.perf_counter()
            counts = fn()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
            best.setdefault("counts", {})[name] = counts  # type: ignore[union-attr]
    same = best.pop("counts")  # type: ignore[assignment]
    assert same["every prompt"] == same["by parts"], "counts by parts differ from tokenising every prompt"
    n = len(templates)
    for name in ("every prompt", "by parts"):
        print(f"{name:>13}: {1000 * best[name] / n:8.2f} ms per candidate x {len(names)} classes")
    print(f"ratio: x{best['every prompt'] / best['by parts']:.1f} faster by parts (counts identical for {n} templates)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
