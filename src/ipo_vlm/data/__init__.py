"""Datasets (your folders, CoOp's 11 benchmarks, the bundled demo) and the seeded few-shot
base-to-novel split the optimizer trains and is tested on.

>>> ds = load_dataset("oxford_pets", data_root="/data")   # DATA/oxford_pets/split_zhou_OxfordPets.json
>>> split = make_split(ds, shots=16, seed=1)
>>> split.base_classnames[:2], len(split.train)
"""

from __future__ import annotations

from pathlib import Path

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample
from ipo_vlm.data.coop import COOP_SPECS, load_coop
from ipo_vlm.data.fewshot import TaskSplit, base_novel_labels, load_split, make_split
from ipo_vlm.data.imagenet_variants import IMAGENET_VARIANTS, load_imagenet_variant
from ipo_vlm.errors import ConfigError, DataError

__all__ = [
    "Dataset", "DatasetInfo", "Sample", "TaskSplit",
    "base_novel_labels", "canonical_dataset_name", "known_datasets", "load_dataset", "load_split", "make_split",
]

#: the bundled demo variants by name (``ipo_vlm.data.demo.VARIANTS``); "demo-shifted" is the
#: shifted demo condition's (out-of-focus items)
_DEMO_ALIASES = {"demo": ("demo", "fashion", "fashion_mnist"),
                 "demo-blurry": ("demo-blurry", "demo-shifted", "fashion-blurry"),
                 "demo-sketch": ("demo-sketch", "fashion-sketch")}


def _norm(name: str) -> str:
    """Spelling-insensitive key: ``OxfordPets``, ``oxford_pets``, ``oxford-pets`` all match."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _aliases() -> dict[str, str]:
    table = {_norm(a): name for name, aliases in _DEMO_ALIASES.items() for a in aliases}
    table[_norm("folder")] = "folder"
    for spec in (*COOP_SPECS.values(), *IMAGENET_VARIANTS.values()):
        split_name = spec.split_file[len("split_zhou_"):-len(".json")] if spec.split_file else ""
        for alias in (spec.name, spec.folder, split_name, *spec.aliases):
            if alias:
                table[_norm(alias)] = spec.name
    table[_norm("FGVCAircraft")] = "fgvc_aircraft"
    return table


def known_datasets() -> tuple[str, ...]:
    """Canonical dataset names ``load_dataset`` accepts (besides a folder path)."""
    return (*_DEMO_ALIASES, "folder", *sorted(COOP_SPECS), *sorted(IMAGENET_VARIANTS))


def canonical_dataset_name(name: str) -> str | None:
    """``"OxfordPets"`` -> ``"oxford_pets"``; None for a name that is no known dataset (a
    folder path, say). Touches nothing on disk."""
    return _aliases().get(_norm(name)) if isinstance(name, str) else None


def load_dataset(name: str, data_root: str | Path | None = None, *, template: str | None = None,
                 domain: str | None = None, classnames_file: str | Path | None = None) -> Dataset:
    """A dataset by name: ``demo``, ``demo-blurry`` or ``demo-sketch`` (bundled); one of CoOp's 11 under ``data_root``; ``folder`` (class
    folders at ``data_root``) or a folder path given as the name.

    ``template`` and ``domain`` override the dataset's defaults; ``classnames_file`` maps
    folder names to readable class names (folder datasets only)."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"no dataset given; known: {', '.join(known_datasets())}, or a folder path")
    if template is not None:
        from ipo_vlm.prompting.placeholders import require_template

        require_template(template)
    canonical = _aliases().get(_norm(name))
    if classnames_file is not None and canonical not in (None, "folder"):
        raise ConfigError("a class-name mapping file applies to folder datasets only")
    if canonical in _DEMO_ALIASES:
        from ipo_vlm.data.demo import VARIANTS, DemoDataset

        return DemoDataset(template=template, domain=domain, variant=VARIANTS[canonical])
    if canonical is None and _looks_like_path(name):
        canonical, data_root = "folder", name
    if canonical is None:
        raise ConfigError(f"unknown dataset {name!r}; known: {', '.join(known_datasets())}, or a folder path")
    if data_root is None:
        raise ConfigError(f"dataset {canonical!r} needs --data-root (the folder that holds it)")
    root = Path(data_root).expanduser()
    if canonical == "folder":
        from ipo_vlm.data.folder import load_folder

        return load_folder(root, template=template, domain=domain, classnames_file=classnames_file)
    if not root.is_dir():
        raise DataError(f"data root not found: {root}")
    if canonical in IMAGENET_VARIANTS:
        return load_imagenet_variant(IMAGENET_VARIANTS[canonical], root, template=template, domain=domain)
    return load_coop(COOP_SPECS[canonical], root, template=template, domain=domain)


def _looks_like_path(name: str) -> bool:
    """A name with a path separator, or an existing folder, is a folder dataset's root."""
    return any(sep in name for sep in ("/", "\\")) or name.startswith(("~", ".")) or Path(name).is_dir()
