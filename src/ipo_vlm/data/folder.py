"""Your own images: ``root/<class>/<image>``, optionally under ``train/ val/ test/``.

Without split subfolders each class is split 50 / 20 / 30 % into train / val / test by a
hash of the file path, so the test set never depends on the few-shot seed. A mapping file
(``classnames.txt`` with ``<folder> <name>`` lines, or ``classnames.json`` ``{folder: name}``)
gives readable class names; otherwise a folder name with ``_`` becomes words."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from ipo_vlm.data.base import DatasetInfo, Sample, check_distinct_classnames
from ipo_vlm.data.files import SPLITS, FileDataset, is_image_name, list_dir, readable_classname
from ipo_vlm.errors import DataError
from ipo_vlm.prompting.placeholders import BASELINE_TEMPLATE

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = BASELINE_TEMPLATE
DEFAULT_DOMAIN = "object"
MAPPING_FILES = ("classnames.json", "classnames.txt")
#: fractions of each class for val and test when the folder has no split subfolders
VAL_FRACTION, TEST_FRACTION = 0.2, 0.3
SPLIT_SALT = "ipo-folder-split"


def load_folder(root: str | Path, template: str | None = None, domain: str | None = None,
                classnames_file: str | Path | None = None) -> FileDataset:
    """A ``FileDataset`` over class folders; see the module docstring for the layout."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    mapping = _read_mapping(Path(classnames_file) if classnames_file else _find_mapping(root))
    top = {name for name, is_dir in list_dir(root) if is_dir}
    if top & set(SPLITS):
        folders, per_split = _read_split_folders(root, top)
    else:
        folders = sorted(top)
        if not folders:
            raise DataError(f"no class folders in {root} (expected {root}/<class>/<image>)")
        per_split = _split_per_class({f: _images(root / f, f) for f in folders})
    unknown = sorted(set(mapping) - set(folders))
    if unknown:
        log.warning("class-name mapping names folders that do not exist: %s", ", ".join(unknown[:5]))
    classnames = tuple(mapping.get(f) or readable_classname(f) for f in folders)
    check_distinct_classnames(classnames, folders, where=str(root))
    splits = {part: [Sample(ref, label, classnames[label]) for label, f in enumerate(folders)
                     for ref in per_split[part].get(f, [])] for part in SPLITS}
    info = DatasetInfo("folder", classnames, template or DEFAULT_TEMPLATE, domain or DEFAULT_DOMAIN)
    return FileDataset(info, root, splits)


def _find_mapping(root: Path) -> Path | None:
    for name in MAPPING_FILES:
        if (root / name).is_file():
            return root / name
    return None


def _read_mapping(path: Path | None) -> dict[str, str]:
    """Folder name -> readable class name."""
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"class-name mapping file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read class-name mapping {path}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"cannot parse class-name mapping {path}: {e}") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise DataError(f"class-name mapping {path} must be a JSON object of folder -> name")
        return {str(k): v.strip() for k, v in raw.items()}
    mapping = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        # a tab separates names that contain spaces; otherwise the first space does
        folder, _, name = line.strip().partition("\t" if "\t" in line else " ")
        if not name.strip():
            raise DataError(f"{path}:{n}: expected '<folder> <class name>'")
        mapping[folder] = name.strip()
    return mapping


def _images(class_dir: Path, prefix: str) -> list[str]:
    """Refs (relative to the dataset root) of all images under a class folder, recursively."""
    refs = []
    for name, is_dir in list_dir(class_dir):
        if is_dir:
            refs.extend(_images(class_dir / name, f"{prefix}/{name}"))
        elif is_image_name(name):
            refs.append(f"{prefix}/{name}")
    return refs


def _read_split_folders(root: Path, top: set[str]) -> tuple[list[str], dict[str, dict[str, list[str]]]]:
    """``root/{train,val,test}/<class>/``; without ``val/``, 20 % of each class's train images."""
    for needed in ("train", "test"):
        if needed not in top:
            raise DataError(f"{root} has split folders but no {needed}/ folder")
    per_split: dict[str, dict[str, list[str]]] = {}
    for part in SPLITS:
        if part in top:
            classes = [n for n, is_dir in list_dir(root / part) if is_dir]
            per_split[part] = {c: _images(root / part / c, f"{part}/{c}") for c in classes}
    folders = sorted(set().union(*(d.keys() for d in per_split.values())))
    if not folders:
        raise DataError(f"no class folders in {root}/train (expected {root}/train/<class>/<image>)")
    if "val" not in per_split:
        carved = _split_per_class(per_split["train"], test_fraction=0.0)
        per_split["train"], per_split["val"] = carved["train"], carved["val"]
    return folders, per_split


def _split_per_class(images: dict[str, list[str]], test_fraction: float = TEST_FRACTION) -> dict[str, dict[str, list[str]]]:
    """Deterministic per-class split by a hash of each ref (no RNG stream involved)."""
    out: dict[str, dict[str, list[str]]] = {p: {} for p in SPLITS}
    for folder, refs in images.items():
        order = sorted(refs, key=lambda r: hashlib.sha256(f"{SPLIT_SALT}:{r}".encode()).hexdigest())
        n = len(order)
        n_test = max(1, round(n * test_fraction)) if n >= 2 and test_fraction > 0 else 0
        n_val = max(1, round(n * VAL_FRACTION)) if n - n_test >= 3 else 0
        out["test"][folder] = sorted(order[:n_test])
        out["val"][folder] = sorted(order[n_test:n_test + n_val])
        out["train"][folder] = sorted(order[n_test + n_val:])
    return out
