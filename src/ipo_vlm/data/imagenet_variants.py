"""ImageNet's four test-only variants, read from the layouts of CoOp's DATASETS.md.

They are *target* datasets: they have ImageNet's class names (``classnames.txt`` copied from
``imagenet/``) and only a test split, and serve the domain-generalization protocol (optimize a
template on ImageNet, evaluate it here). Layouts under the data root::

    imagenetv2/imagenetv2-matched-frequency-format-val/<0..999>/*.jpeg   + classnames.txt
    imagenet-sketch/images/<wnid>/*.JPEG                                + classnames.txt
    imagenet-adversarial/imagenet-a/<wnid>/*.jpg   (200 classes)        + classnames.txt
    imagenet-rendition/imagenet-r/<wnid>/*.jpg     (200 classes)        + classnames.txt

ImageNet-V2 names its class folders by label index (the position of the wnid in sorted
order); the others by wnid, and -A / -R hold only 200 of the 1000 classes, labelled in the
sorted order of the folders present, as CoOp does."""

from __future__ import annotations

from pathlib import Path

from ipo_vlm.data.base import DatasetInfo, Sample
from ipo_vlm.data.coop import CoopSpec, dataset_dir
from ipo_vlm.data.files import FileDataset, is_image_name, list_dir
from ipo_vlm.errors import DataError

IMAGENET_VARIANTS: dict[str, CoopSpec] = {
    s.name: s
    for s in (
        CoopSpec("imagenetv2", "imagenetv2", "imagenetv2-matched-frequency-format-val", None,
                 "a photo of a {}.", "object", ("imagenet_v2", "imagenet-v2")),
        CoopSpec("imagenet_sketch", "imagenet-sketch", "images", None,
                 "a photo of a {}.", "object", ("imagenet-sketch", "imagenetsketch", "sketch")),
        CoopSpec("imagenet_a", "imagenet-adversarial", "imagenet-a", None,
                 "a photo of a {}.", "object", ("imagenet-a", "imagenet_adversarial", "imageneta")),
        CoopSpec("imagenet_r", "imagenet-rendition", "imagenet-r", None,
                 "a photo of a {}.", "object", ("imagenet-r", "imagenet_rendition", "imagenetr")),
    )
}


def read_classnames(path: Path) -> dict[str, str]:
    """``classnames.txt``: one ``<wnid> <class name>`` per line (ImageNet's file)."""
    if not path.is_file():
        raise DataError(f"class names file not found: {path} (copy it from imagenet/classnames.txt)")
    names: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        wnid, _, name = line.strip().partition(" ")
        if not name.strip():
            raise DataError(f"{path}:{n}: expected '<wnid> <class name>'")
        names[wnid] = name.strip()
    return names


def load_imagenet_variant(spec: CoopSpec, data_root: Path, template: str | None = None,
                          domain: str | None = None) -> FileDataset:
    """A test-only dataset: ``train`` and ``val`` are empty."""
    root = dataset_dir(spec, Path(data_root))
    image_dir = root / spec.image_dir
    names = read_classnames(root / "classnames.txt")
    if not image_dir.is_dir():
        raise DataError(f"image folder not found: {image_dir}")
    wnids = sorted(names)
    folders = [name for name, is_dir in list_dir(image_dir) if is_dir]
    if spec.name == "imagenetv2":
        # folders are label indices into the sorted wnids
        pairs = []
        for f in folders:
            if not f.isdigit() or int(f) >= len(wnids):
                raise DataError(f"{image_dir}: class folder {f!r} is not a label in 0..{len(wnids) - 1}")
            pairs.append((int(f), f))
        pairs.sort()
        classnames = tuple(names[w] for w in wnids)
        labelled = [(label, folder) for label, folder in pairs]
    else:
        unknown = [f for f in folders if f not in names]
        if unknown:
            raise DataError(f"{image_dir}: class folder {unknown[0]!r} is not in classnames.txt")
        present = sorted(folders) if spec.name in ("imagenet_a", "imagenet_r") else wnids
        classnames = tuple(names[w] for w in present)
        labelled = [(i, w) for i, w in enumerate(present) if w in set(folders)]
    test: list[Sample] = []
    for label, folder in labelled:
        files = [n for n, is_dir in list_dir(image_dir / folder) if not is_dir and is_image_name(n)]
        test.extend(Sample(f"{folder}/{f}", label, classnames[label]) for f in files)
    if not test:
        raise DataError(f"no images under {image_dir}")
    info = DatasetInfo(spec.name, classnames, template or spec.template, domain or spec.domain)
    return FileDataset(info, image_dir, {"train": [], "val": [], "test": test})
