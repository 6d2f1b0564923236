"""Rebuild a bundled demo dataset (a small, fixed subset of Fashion-MNIST).

Reads Debian's ``dataset-fashion-mnist`` (MIT) from /usr/share/datasets/fashion-mnist and writes
``src/ipo_vlm/assets/demo_data/fashion_mnist_demo.npz`` plus a JSON record with its sha256.
Which images are kept depends only on their index (ranked by sha256), so the output is
byte-identical on every machine: the zip members carry a fixed timestamp.

``--rendering blurry`` writes the shifted condition's ``fashion_mnist_blurry.npz`` instead (the
same items, rendered by ``ipo_vlm.data.renderings.blurry``), ``--rendering sketch`` the sketches'.

Usage: python scripts/build_demo_data.py [--rendering photo|blurry|sketch] [--source DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from ipo_vlm.data.demo import FASHION_MNIST_DIR, VARIANTS as DEMO_VARIANTS, read_fashion_mnist
from ipo_vlm.data.renderings import render
from ipo_vlm.io.hashing import sha256_file

OUT = Path(__file__).resolve().parents[1] / "src" / "ipo_vlm" / "assets" / "demo_data"
#: rendering -> the demo dataset it makes
VARIANTS = {v.rendering: v for v in DEMO_VARIANTS.values()}
# Images per class in each pool. train/val come from the 60k training set (disjoint),
# test from the 10k test set.
PER_CLASS = {"train": 200, "val": 20, "test": 200}
SALT = "ipo-demo-v1"


def ranked(indices: np.ndarray, pool: str) -> list[int]:
    """Indices ordered by a hash of their value: a seeded shuffle that needs no RNG stream."""
    return sorted((int(i) for i in indices), key=lambda i: hashlib.sha256(f"{SALT}:{pool}:{i}".encode()).hexdigest())


def pick(labels: np.ndarray, pool: str, counts: dict[str, int]) -> dict[str, list[int]]:
    """Per class, the first ``counts[part]`` ranked indices for each part, parts disjoint."""
    chosen: dict[str, list[int]] = {part: [] for part in counts}
    for label in range(10):
        order = ranked(np.flatnonzero(labels == label), pool)
        start = 0
        for part, n in counts.items():
            if start + n > len(order):
                sys.exit(f"class {label} has only {len(order)} images in the {pool} set")
            chosen[part].extend(order[start : start + n])
            start += n
    return chosen


def deterministic_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (zip of .npy) whose bytes do not depend on the clock, unlike ``np.savez``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=FASHION_MNIST_DIR)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--rendering", choices=sorted(VARIANTS), default="photo")
    args = ap.parse_args(argv)
    files = {
        "train_images": "train-images-idx3-ubyte.gz",
        "train_labels": "train-labels-idx1-ubyte.gz",
        "test_images": "t10k-images-idx3-ubyte.gz",
        "test_labels": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [n for n in files.values() if not (args.source / n).exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)} in {args.source}; install Debian's dataset-fashion-mnist")
    src: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        src[f"{split}_images"], src[f"{split}_labels"] = read_fashion_mnist(split, args.source)
    from_train = pick(src["train_labels"], "train", {"train": PER_CLASS["train"], "val": PER_CLASS["val"]})
    from_test = pick(src["test_labels"], "test", {"test": PER_CLASS["test"]})
    arrays: dict[str, np.ndarray] = {}
    for part, idx, kind in (("train", from_train["train"], "train"), ("val", from_train["val"], "train"),
                            ("test", from_test["test"], "test")):
        arrays[f"{part}_images"] = render(args.rendering, src[f"{kind}_images"][idx])
        arrays[f"{part}_labels"] = src[f"{kind}_labels"][idx].astype(np.uint8)
    data = deterministic_npz(arrays)
    variant = VARIANTS[args.rendering]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / variant.npz_name).write_bytes(data)
    record = {
        "file": variant.npz_name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "source": "Fashion-MNIST (Zalando Research, MIT licence), from Debian's dataset-fashion-mnist",
        "source_sha256": {v: sha256_file(args.source / v) for v in files.values()},
        "per_class": PER_CLASS,
        "salt": SALT,
    }
    if args.rendering != "photo":
        record["rendering"] = f"{args.rendering} (ipo_vlm.data.renderings)"
    (args.out / variant.record_name).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out / variant.npz_name} ({len(data)} bytes, sha256 {record['sha256'][:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
