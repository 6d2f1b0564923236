"""ImageNet-V2 / -Sketch / -A / -R read from tiny replicas of CoOp's layouts."""

from __future__ import annotations

import pytest
from helpers.data_fixtures import write_image

from ipo_vlm.data import canonical_dataset_name, known_datasets, load_dataset
from ipo_vlm.errors import DataError

CLASSES = {"n03": "tiger shark", "n01": "tench", "n02": "goldfish", "n04": "great white shark"}
SORTED_NAMES = ("tench", "goldfish", "tiger shark", "great white shark")


def _classnames(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classnames.txt").write_text("".join(f"{w} {n}\n" for w, n in CLASSES.items()), encoding="utf-8")


def test_imagenetv2_folders_are_label_indices(tmp_path):
    folder = tmp_path / "imagenetv2"
    _classnames(folder)
    for label in range(4):
        for i in range(2):
            write_image(folder / "imagenetv2-matched-frequency-format-val" / str(label) / f"{i}.jpeg", 10 * label + i, fmt="JPEG")
    ds = load_dataset("ImageNet-V2", data_root=tmp_path)
    assert ds.info.name == "imagenetv2" and ds.info.classnames == SORTED_NAMES
    test = ds.split("test")
    assert len(test) == 8 and ds.split("train") == [] and ds.split("val") == []
    # folder "2" is the third wnid in sorted order
    assert {s.classname for s in test if s.ref.startswith("2/")} == {"tiger shark"}
    assert ds.open_image(test[0]).size == (6, 6)


def test_imagenet_sketch_uses_all_classes_by_sorted_wnid(tmp_path):
    folder = tmp_path / "imagenet-sketch"
    _classnames(folder)
    for n, wnid in enumerate(["n01", "n02", "n03", "n04"]):
        write_image(folder / "images" / wnid / "sketch_0.JPEG", n, fmt="JPEG")
    ds = load_dataset("imagenet_sketch", data_root=tmp_path)
    assert ds.info.classnames == SORTED_NAMES
    assert [(s.ref, s.label) for s in ds.split("test")] == [("n01/sketch_0.JPEG", 0), ("n02/sketch_0.JPEG", 1),
                                                              ("n03/sketch_0.JPEG", 2), ("n04/sketch_0.JPEG", 3)]


@pytest.mark.parametrize("name,folder,images", [("imagenet_a", "imagenet-adversarial", "imagenet-a"),
                                                ("imagenet_r", "imagenet-rendition", "imagenet-r")])
def test_a_and_r_hold_a_subset_of_classes(tmp_path, name, folder, images):
    root = tmp_path / folder
    _classnames(root)
    for n, wnid in enumerate(["n04", "n02"]):  # two of the four classes
        write_image(root / images / wnid / "x.jpg", n)
    ds = load_dataset(name, data_root=tmp_path)
    assert ds.info.classnames == ("goldfish", "great white shark")
    assert [(s.label, s.classname) for s in ds.split("test")] == [(0, "goldfish"), (1, "great white shark")]


def test_missing_classnames_and_unknown_folders(tmp_path):
    root = tmp_path / "imagenet-rendition"
    write_image(root / "imagenet-r" / "n01" / "x.jpg", 1)
    (root / "classnames.txt").write_text("", encoding="utf-8")
    (root / "classnames.txt").unlink()
    with pytest.raises(DataError, match="dataset folder not found|class names file not found"):
        load_dataset("imagenet_r", data_root=tmp_path)
    _classnames(root)
    write_image(root / "imagenet-r" / "n99" / "x.jpg", 2)
    with pytest.raises(DataError, match="'n99' is not in classnames.txt"):
        load_dataset("imagenet_r", data_root=tmp_path)


def test_names_resolve_without_touching_disk():
    assert canonical_dataset_name("ImageNet-A") == "imagenet_a"
    assert canonical_dataset_name("imagenet-sketch") == "imagenet_sketch"
    assert canonical_dataset_name("OxfordPets") == "oxford_pets"
    assert canonical_dataset_name("~/photos") is None
    assert {"imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"} <= set(known_datasets())
