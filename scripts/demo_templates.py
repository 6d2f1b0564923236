"""Zero-shot accuracy of the ``demo:fashion`` VLM for every template in
``ipo_vlm/assets/demo_vlm/templates.txt``: base (first 5 classes, 5-way), novel (last 5, 5-way)
and their harmonic mean H, on a Fashion-MNIST test split.

    .venv/bin/python scripts/demo_templates.py [--source demo|debian] [--weights FILE] [--attributes]

``--source demo`` (default) uses the test images bundled with the package (200 per class);
``debian`` the full 10,000-image test split from Debian's ``dataset-fashion-mnist``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ipo_vlm.data.demo import CLASSNAMES, read_fashion_mnist
from ipo_vlm.vlm.demo import assets_dir, load_demo



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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("demo", "debian"), default="demo")
    parser.add_argument("--weights", type=Path, default=None, help="another trained image tower")
    parser.add_argument("--templates", type=Path, default=None)
    parser.add_argument("--attributes", action="store_true", help="also check the attribute phrases (needs Debian's train split)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    vlm = load_demo("fashion", weights=args.weights)
    pixels, labels = bundled_test() if args.source == "demo" else debian_test()
    features = vlm.encode_pixels(pixels)
    rows = template_table(vlm, features, labels, read_templates(args.templates))
    width = max(len(r[0]) for r in rows)
    print(f"{'template':<{width}}  base%  novel%   H%   ({args.source} test, {len(labels)} images)")
    for template, base, novel, hm in sorted(rows, key=lambda r: -r[1]):
        print(f"{template:<{width}}  {100 * base:5.1f}  {100 * novel:5.1f}  {100 * hm:5.1f}")
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
