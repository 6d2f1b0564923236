"""Zero-shot accuracy of the ``demo:fashion`` VLM for every template in
``ipo_vlm/assets/demo_vlm/templates.txt``: base (first 5 classes, 5-way), novel (last 5, 5-way)
and their harmonic mean H, on a Fashion-MNIST test split.

    .venv/bin/python scripts/demo_templates.py [--source demo|debian] [--weights FILE] [--attributes]
    .venv/bin/python scripts/demo_templates.py --condition shifted [--source demo|debian] [--weights FILE] [--attributes]

``--source demo`` (default) uses the test images bundled with the package (200 per class);
``debian`` the full 10,000-image test split from Debian's ``dataset-fashion-mnist``.

``--condition shifted`` measures ``demo:fashion-shifted`` on the shifted condition's images
(``demo-blurry``; ``--dataset demo-sketch`` for sketches) over the same 30 templates plus the
dataset's medium templates and wrong-medium ones (``ipo_vlm.data.demo``), and prints the
headroom (best template's H minus "a photo of a {}."'s), the wrong-medium penalty and the spread;
``--attributes`` then checks that the medium phrases of the model's vocabulary name the
rendering of test images in every medium.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ipo_vlm.data.demo import CLASSNAMES, read_fashion_mnist
from ipo_vlm.vlm.demo import assets_dir
from ipo_vlm.vlm.demo_models import load_demo


def read_templates(path: Path | None = None) -> list[str]:
    """The shipped template list: one template per line, blank lines and ``#`` lines skipped."""
    path = path or assets_dir() / "templates.txt"
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def debian_test() -> tuple[np.ndarray, np.ndarray]:
    """(n, 28, 28) float32 in [0, 1] and labels of the Debian test split."""
    images, labels = read_fashion_mnist("test")
    return images.astype(np.float32) / 255.0, labels.astype(np.int64)


def bundled_test() -> tuple[np.ndarray, np.ndarray]:
    """The demo dataset's test pool, through ``ipo_vlm.data`` (the images ``ipo demo`` uses)."""
    from ipo_vlm.data.demo import DemoDataset

    ds = DemoDataset()
    samples = ds.split("test")
    pixels = np.stack([ds.array(s) for s in samples]).astype(np.float32) / 255.0
    return pixels, np.array([s.label for s in samples], dtype=np.int64)


def template_table(vlm, features: np.ndarray, labels: np.ndarray, templates: list[str]) -> list[tuple[str, float, float, float]]:
    """(template, base, novel, H) per template; accuracies as fractions."""
    rows = []
    for template in templates:
        texts = vlm.encode_texts([template.replace("{}", c) for c in CLASSNAMES])
        accs = []
        for lo in (0, 5):
            sel = (labels >= lo) & (labels < lo + 5)
            pred = (features[sel] @ texts[lo : lo + 5].T).argmax(1) + lo
            accs.append(float((pred == labels[sel]).mean()))
        base, novel = accs
        rows.append((template, base, novel, 2 * base * novel / (base + novel) if base + novel else 0.0))
    return rows


def attribute_recovery(vlm, features: np.ndarray, pixels: np.ndarray) -> dict[str, float]:
    """Per attribute group of the shipped vocabulary: how often the VLM ranks the phrase that
    the training script's pixel measure assigns first (thresholds from the training images)."""
    import json

    import train_demo_vlm as train  # a sibling script: same measures and thresholds

    thresholds = np.median(train.attribute_measures(train.load_fashion("train")[0][:12000]), axis=0)
    codes = train.attribute_codes(train.attribute_measures((pixels * 255).round().astype(np.uint8)), thresholds)
    vocab = json.loads(Path(vlm.attribute_vocabulary).read_text(encoding="utf-8"))
    result = {}
    for k, (name, phrases) in enumerate(vocab["groups"].items()):
        texts = vlm.encode_texts([vocab["prompt"].replace("{}", p) for p in phrases])
        result[name] = float(((features @ texts.T).argmax(1) == codes[:, k]).mean())
    return result


def shifted_variant(name: str | None = None):
    """A shifted demo variant by dataset name (``ipo_vlm.data.demo``); the shifted condition's by default."""
    from ipo_vlm.data.demo import SHIFTED, VARIANTS

    variant = VARIANTS.get(name or SHIFTED.name)
    if variant is None or not variant.medium_templates:
        raise SystemExit(f"not a shifted demo dataset: {name!r}; known: "
                         f"{', '.join(v.name for v in VARIANTS.values() if v.medium_templates)}")
    return variant


def shifted_test(source: str, variant) -> tuple[np.ndarray, np.ndarray]:
    """The test split in the variant's medium: the bundled images or all of Debian's."""
    if source == "debian":
        from ipo_vlm.data.renderings import render

        images, labels = read_fashion_mnist("test")
        return render(variant.rendering, images).astype(np.float32) / 255.0, labels.astype(np.int64)
    from ipo_vlm.data.demo import DemoDataset

    ds = DemoDataset(variant=variant)
    samples = ds.split("test")
    pixels = np.stack([ds.array(s) for s in samples]).astype(np.float32) / 255.0
    return pixels, np.array([s.label for s in samples], dtype=np.int64)


def shifted_templates(variant, generic: list[str]) -> list[str]:
    """The generic templates, then the variant's medium and wrong-medium templates, once each."""
    return list(dict.fromkeys([*generic, *variant.medium_templates, *variant.wrong_medium_templates]))


def shifted_summary(rows: list[tuple[str, float, float, float]], generic: list[str], variant) -> dict[str, object]:
    """Headroom, wrong-medium penalty and spread (H, fractions) of a shifted template table."""
    h = {r[0]: r[3] for r in rows}
    baseline = h["a photo of a {}."]
    domain = variant.medium_templates[0]
    pool = list(dict.fromkeys([*generic, domain]))
    best = max(pool, key=lambda t: h[t])
    return {
        "baseline_h": baseline,
        "best": best,
        "headroom": h[best] - baseline,
        "domain_gain": h[domain] - baseline,
        "wrong_penalty": {t: baseline - h[t] for t in variant.wrong_medium_templates},
        "generic_spread": max(h[t] for t in generic) - min(h[t] for t in generic),
        "baseline_rank": 1 + sum(h[t] > baseline for t in pool),
        "pool_size": len(pool),
    }


def medium_recovery(vlm, source: str) -> dict[str, float]:
    """Per rendering: how often the model's own medium phrases name the rendering of a test image."""
    import json

    from ipo_vlm.data.renderings import RENDERINGS, render

    if source == "debian":
        images = read_fashion_mnist("test")[0]
    else:
        from ipo_vlm.data.demo import DemoDataset

        ds = DemoDataset()
        images = np.stack([ds.array(s) for s in ds.split("test")])
    vocab = json.loads(Path(vlm.attribute_vocabulary).read_text(encoding="utf-8"))
    phrases = vocab["groups"]["medium"]
    texts = vlm.encode_texts([vocab["prompt"].replace("{}", p) for p in phrases])
    result = {}
    for k, name in enumerate(RENDERINGS):
        feats = vlm.encode_pixels(render(name, images).astype(np.float32) / 255.0)
        result[name] = float(((feats @ texts.T).argmax(1) == k).mean())
    return result


def print_table(rows: list[tuple[str, float, float, float]], source: str, n_images: int, sort_by: int = 1) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'template':<{width}}  base%  novel%   H%   ({source} test, {n_images} images)")
    for template, base, novel, hm in sorted(rows, key=lambda r: -r[sort_by]):
        print(f"{template:<{width}}  {100 * base:5.1f}  {100 * novel:5.1f}  {100 * hm:5.1f}")


def main_shifted(args: argparse.Namespace) -> None:
    variant = shifted_variant(args.dataset)
    vlm = load_demo("fashion-shifted", weights=args.weights)
    pixels, labels = shifted_test(args.source, variant)
    features = vlm.encode_pixels(pixels)
    generic = read_templates(args.templates)
    rows = template_table(vlm, features, labels, shifted_templates(variant, generic))
    print(f"{vlm.model_id} on {variant.name} ({variant.rendering} images)")
    print_table(rows, args.source, len(labels), sort_by=3)
    s = shifted_summary(rows, generic, variant)
    domain = variant.medium_templates[0]
    print(f"'a photo of a {{}}.': H {100 * s['baseline_h']:.1f}, rank {s['baseline_rank']} of {s['pool_size']} "
          f"(the {len(generic)} generic templates + {domain!r})")
    print(f"headroom: best {s['best']!r} {100 * s['headroom']:+.1f} H points over 'a photo of a {{}}.'")
    print(f"domain template {domain!r}: {100 * s['domain_gain']:+.1f} H points")
    for template, penalty in s["wrong_penalty"].items():
        print(f"wrong medium {template!r}: {100 * -penalty:+.1f} H points")
    print(f"H spread over the {len(generic)} generic templates (best - worst): {100 * s['generic_spread']:.1f} points")
    if args.attributes:
        for name, acc in medium_recovery(vlm, args.source).items():
            print(f"medium {name}: the right phrase ranked first for {100 * acc:.1f} % of the images")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", choices=("plain", "shifted"), default="plain")
    parser.add_argument("--source", choices=("demo", "debian"), default="demo")
    parser.add_argument("--dataset", default=None, help="shifted condition: the demo variant (default: demo-blurry)")
    parser.add_argument("--weights", type=Path, default=None, help="another trained image tower (or towers)")
    parser.add_argument("--templates", type=Path, default=None)
    parser.add_argument("--attributes", action="store_true", help="also check the attribute phrases (needs Debian's train split)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    if args.condition == "shifted":
        main_shifted(args)
        return
    vlm = load_demo("fashion", weights=args.weights)
    pixels, labels = bundled_test() if args.source == "demo" else debian_test()
    features = vlm.encode_pixels(pixels)
    rows = template_table(vlm, features, labels, read_templates(args.templates))
    print_table(rows, args.source, len(labels))
    bases = [r[1] for r in rows]
    baseline = next((r for r in rows if r[0] == "a photo of a {}."), None)
    print(f"base spread (best - worst): {100 * (max(bases) - min(bases)):.1f} points")
    if baseline:
        rank = 1 + sum(b > baseline[1] for b in bases)
        print(f"'a photo of a {{}}.': base {100 * baseline[1]:.1f}, rank {rank} of {len(rows)} by base accuracy")
    if args.attributes:
        for name, acc in attribute_recovery(vlm, features, pixels).items():
            print(f"attribute {name}: right phrase ranked first for {100 * acc:.1f} % of the images")


if __name__ == "__main__":
    main()
