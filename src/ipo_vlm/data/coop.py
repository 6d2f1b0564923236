"""The 11 datasets of CoOp's benchmark, read from the layouts of CoOp's DATASETS.md.

Nine ship a ``split_zhou_<Name>.json`` (``{"train"|"val"|"test": [[relpath, label, classname],
...]}``, paths relative to the image directory); FGVCAircraft ships text files of
``<image id> <variant>``; ImageNet is class folders plus ``classnames.txt``. Only the split
files are read at load time; image files are checked when a split is drawn."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from ipo_vlm.data.base import DatasetInfo, Sample
from ipo_vlm.data.files import SPLITS, FileDataset, is_image_name, list_dir, readable_classname
from ipo_vlm.errors import DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoopSpec:
    """Where one CoOp dataset lives under the data root, and its prompt defaults."""

    name: str
    folder: str  # the dataset folder under --data-root
    image_dir: str  # relative to the dataset folder
    split_file: str | None  # None for the two datasets without a JSON split
    template: str
    domain: str
    aliases: tuple[str, ...] = ()


COOP_SPECS: dict[str, CoopSpec] = {
    s.name: s
    for s in (
        CoopSpec("caltech101", "caltech-101", "101_ObjectCategories", "split_zhou_Caltech101.json",
                 "a photo of a {}.", "object", ("caltech", "caltech-101")),
        CoopSpec("oxford_pets", "oxford_pets", "images", "split_zhou_OxfordPets.json",
                 "a photo of a {}, a type of pet.", "pet", ("pets", "oxfordpet")),
        CoopSpec("stanford_cars", "stanford_cars", "", "split_zhou_StanfordCars.json",
                 "a photo of a {}.", "car", ("cars",)),
        CoopSpec("oxford_flowers", "oxford_flowers", "jpg", "split_zhou_OxfordFlowers.json",
                 "a photo of a {}, a type of flower.", "flower", ("flowers", "flowers102", "flower102")),
        CoopSpec("food101", "food-101", "images", "split_zhou_Food101.json",
                 "a photo of {}, a type of food.", "food", ("food",)),
        CoopSpec("sun397", "sun397", "SUN397", "split_zhou_SUN397.json",
                 "a photo of a {}.", "scene", ("sun",)),
        CoopSpec("dtd", "dtd", "images", "split_zhou_DescribableTextures.json",
                 "{} texture.", "texture", ("describable_textures", "textures")),
        CoopSpec("eurosat", "eurosat", "2750", "split_zhou_EuroSAT.json",
                 "a centered satellite photo of {}.", "satellite image", ()),
        CoopSpec("ucf101", "ucf101", "UCF-101-midframes", "split_zhou_UCF101.json",
                 "a photo of a person doing {}.", "action", ("ucf",)),
        CoopSpec("fgvc_aircraft", "fgvc_aircraft", "images", None,
                 "a photo of a {}, a type of aircraft.", "aircraft", ("aircraft", "fgvc")),
        CoopSpec("imagenet", "imagenet", "images", None,
                 "a photo of a {}.", "object", ("imagenet1k", "ilsvrc2012")),
    )
}


def dataset_dir(spec: CoopSpec, data_root: Path) -> Path:
    """``DATA/<folder>`` as CoOp expects; ``DATA`` itself when it already is that folder."""
    candidate = data_root / spec.folder
    if candidate.is_dir():
        return candidate
    marker = spec.split_file or ("variants.txt" if spec.name == "fgvc_aircraft" else "classnames.txt")
    if (data_root / marker).is_file():
        return data_root
    if not data_root.is_dir():
        raise DataError(f"data root not found: {data_root}")
    raise DataError(f"dataset folder not found: {candidate} (expected CoOp's layout for {spec.name})")


def load_coop(spec: CoopSpec, data_root: Path, template: str | None = None,
              domain: str | None = None) -> FileDataset:
    """Read one CoOp dataset's split definition (not its images)."""
    root = dataset_dir(spec, Path(data_root))
    image_dir = root / spec.image_dir if spec.image_dir else root
    if spec.name == "fgvc_aircraft":
        classnames, splits = _read_aircraft(root)
    elif spec.name == "imagenet":
        classnames, splits = _read_imagenet(root, image_dir)
    else:
        assert spec.split_file is not None
        classnames, splits = read_split_file(root / spec.split_file)
    if not image_dir.is_dir():
        raise DataError(f"image folder not found: {image_dir}")
    info = DatasetInfo(spec.name, classnames, template or spec.template, domain or spec.domain)
    log.info("%s: %d classes, %s", spec.name, len(classnames),
             ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    return FileDataset(info, image_dir, splits)


def read_split_file(path: Path) -> tuple[tuple[str, ...], dict[str, list[Sample]]]:
    """Parse a ``split_zhou_*.json``; class names come from its entries (``_`` -> space)."""
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot parse split file {path}: {e}") from None
    if not isinstance(raw, dict) or any(s not in raw for s in SPLITS):
        raise DataError(f"split file {path} must hold 'train', 'val' and 'test' lists")
    names: dict[int, str] = {}
    parsed: dict[str, list[tuple[str, int, str]]] = {}
    for part in SPLITS:
        rows = []
        for i, entry in enumerate(raw[part]):
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                    and isinstance(entry[1], int) and isinstance(entry[2], str)):
                raise DataError(f"{path}: {part}[{i}] is not [relpath, label, classname]: {entry!r}")
            rel, label, cname = entry
            names.setdefault(label, readable_classname(cname))
            rows.append((rel, label, cname))
        parsed[part] = rows
    classnames = _dense_classnames(names, path)
    splits = {p: [Sample(rel, lab, classnames[lab]) for rel, lab, _ in rows] for p, rows in parsed.items()}
    return classnames, splits


def _dense_classnames(names: dict[int, str], where: Path) -> tuple[str, ...]:
    """Labels must be 0..n-1, as in every CoOp split file."""
    if not names:
        raise DataError(f"no samples in {where}")
    expected = set(range(len(names)))
    if set(names) != expected:
        bad = sorted(set(names) - expected)[:3]
        raise DataError(f"{where}: labels must be 0..{len(names) - 1}; found {bad}")
    return tuple(names[i] for i in range(len(names)))


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(f"split file not found: {path}")
    try:
        return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {path}: {e}") from None


def _read_aircraft(root: Path) -> tuple[tuple[str, ...], dict[str, list[Sample]]]:
    """``variants.txt`` orders the classes; ``images_variant_<split>.txt`` lines are
    ``<image id> <variant name, may contain spaces>`` and images are ``images/<id>.jpg``."""
    variants = _read_lines(root / "variants.txt")
    label_of = {v: i for i, v in enumerate(variants)}
    classnames = tuple(readable_classname(v) for v in variants)
    splits: dict[str, list[Sample]] = {}
    for part in SPLITS:
        path = root / f"images_variant_{part}.txt"
        samples = []
        for n, line in enumerate(_read_lines(path), 1):
            image_id, _, variant = line.partition(" ")
            if variant not in label_of:
                raise DataError(f"{path}:{n}: variant {variant!r} is not in variants.txt")
            label = label_of[variant]
            samples.append(Sample(f"{image_id}.jpg", label, classnames[label]))
        splits[part] = samples
    return classnames, splits


def _read_imagenet(root: Path, image_dir: Path) -> tuple[tuple[str, ...], dict[str, list[Sample]]]:
    """Labels follow the sorted wnid folders, as CoOp does; ``val/`` serves as the test split.

    The ``val`` split returns the training images: the few-shot sampler takes validation
    shots that are disjoint from the training shots (CoOp reuses the test set instead)."""
    names: dict[str, str] = {}
    for n, line in enumerate(_read_lines(root / "classnames.txt"), 1):
        wnid, _, name = line.partition(" ")
        if not name:
            raise DataError(f"{root / 'classnames.txt'}:{n}: expected '<wnid> <class name>'")
        names[wnid] = name.strip()
    wnids = sorted(names)
    classnames = tuple(names[w] for w in wnids)
    splits = {"train": _list_class_folders(image_dir / "train", wnids, classnames),
              "test": _list_class_folders(image_dir / "val", wnids, classnames)}
    splits["val"] = splits["train"]
    return classnames, splits


def _list_class_folders(split_dir: Path, folders: list[str], classnames: tuple[str, ...]) -> list[Sample]:
    if not split_dir.is_dir():
        raise DataError(f"image folder not found: {split_dir}")
    samples = []
    for label, folder in enumerate(folders):
        class_dir = split_dir / folder
        if not class_dir.is_dir():
            raise DataError(f"class folder not found: {class_dir}")
        files = [name for name, is_dir in list_dir(class_dir) if not is_dir and is_image_name(name)]
        prefix = f"{split_dir.name}/{folder}/"
        samples.extend(Sample(prefix + f, label, classnames[label]) for f in files)
    return samples

