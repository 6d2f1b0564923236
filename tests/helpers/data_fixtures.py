"""Tiny on-disk replicas of the dataset layouts the loaders read (CoOp's and class folders).

Images are a few pixels, each a distinct colour so that content hashes differ."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ipo_vlm.data.coop import COOP_SPECS


def write_image(path: Path, index: int, fmt: str | None = None) -> Path:
    """A 6x6 image whose colour encodes ``index``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = (index * 37 % 256, index * 91 % 256, index * 13 % 256)
    Image.new("RGB", (6, 6), colour).save(path, format=fmt)
    return path


def make_split_json_dataset(data_root: Path, name: str, raw_classes: list[str],
                            counts: dict[str, int]) -> Path:
    """``DATA/<folder>/<image dir>/<class>/<n>.jpg`` plus CoOp's ``split_zhou_*.json``.

    ``raw_classes`` are written as they appear in CoOp's files (underscores kept)."""
    spec = COOP_SPECS[name]
    folder = data_root / spec.folder
    image_dir = folder / spec.image_dir if spec.image_dir else folder
    split: dict[str, list] = {}
    n = 0
    for part, per_class in counts.items():
        rows = []
        for label, cname in enumerate(raw_classes):
            for i in range(per_class):
                rel = f"{cname}/{part}_{i}.jpg"
                write_image(image_dir / rel, n)
                n += 1
                rows.append([rel, label, cname])
        split[part] = rows
    (folder / spec.split_file).write_text(json.dumps(split), encoding="utf-8")
    return folder


def make_aircraft(data_root: Path, variants: list[str], counts: dict[str, int]) -> Path:
    """``fgvc_aircraft/{variants.txt, images_variant_<split>.txt, images/<id>.jpg}``."""
    folder = data_root / "fgvc_aircraft"
    folder.mkdir(parents=True)
    (folder / "variants.txt").write_text("\n".join(variants) + "\n", encoding="utf-8")
    image_id = 1000000
    for part, per_class in counts.items():
        lines = []
        for variant in variants:
            for _ in range(per_class):
                write_image(folder / "images" / f"{image_id}.jpg", image_id)
                lines.append(f"{image_id} {variant}")
                image_id += 1
        (folder / f"images_variant_{part}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def make_imagenet(data_root: Path, classes: dict[str, str], train: int, val: int) -> Path:
    """``imagenet/images/{train,val}/<wnid>/*.JPEG`` plus ``classnames.txt``."""
    folder = data_root / "imagenet"
    folder.mkdir(parents=True)
    lines = [f"{wnid} {name}" for wnid, name in classes.items()]
    (folder / "classnames.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    n = 0
    for sub, per_class in (("train", train), ("val", val)):
        for wnid in classes:
            for i in range(per_class):
                write_image(folder / "images" / sub / wnid / f"{wnid}_{i}.JPEG", n, fmt="JPEG")
                n += 1
    return folder


def make_class_folders(root: Path, classes: dict[str, int], sub: str = "") -> Path:
    """``root/[sub/]<class>/<i>.png`` with the given number of images per class."""
    n = sum(1 for _ in root.rglob("*")) if root.exists() else 0
    for cname, count in classes.items():
        for i in range(count):
            write_image(root / sub / cname / f"img_{i}.png", n)
            n += 1
    return root
