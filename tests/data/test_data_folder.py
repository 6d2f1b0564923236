"""Folder datasets: ``root/<class>/<image>``, optional split subfolders and name mapping."""

from __future__ import annotations

import json

import pytest
from helpers.data_fixtures import make_class_folders, write_image

from ipo_vlm.data import load_dataset, make_split
from ipo_vlm.errors import ConfigError, DataError


def test_class_folders_with_seeded_split(tmp_path):
    root = make_class_folders(tmp_path / "birds", {"blue_jay": 10, "cardinal": 10, "robin": 4})
    (root / "cardinal" / "notes.txt").write_text("not an image")
    (root / "cardinal" / ".hidden.png").write_bytes(b"")
    write_image(root / "cardinal" / "sub" / "extra.JPG", 500, fmt="JPEG")
    ds = load_dataset("folder", data_root=root)
    assert ds.info.classnames == ("blue jay", "cardinal", "robin")
    assert ds.info.template == "a photo of a {}." and ds.info.domain == "object"
    per_class = {p: [sum(1 for s in ds.split(p) if s.label == c) for c in range(3)] for p in ("train", "val", "test")}
    # 10 -> 5/2/3, 11 -> 6/2/3 (the nested JPG counts, the .txt and the hidden file do not), 4 -> 2/1/1
    assert per_class == {"train": [5, 6, 2], "val": [2, 2, 1], "test": [3, 3, 1]}
    all_refs = [s.ref for p in ("train", "val", "test") for s in ds.split(p)]
    assert len(all_refs) == len(set(all_refs)) == 25
    assert "cardinal/sub/extra.JPG" in all_refs


def test_seeded_split_is_stable_and_independent_of_few_shot_seed(tmp_path):
    root = make_class_folders(tmp_path / "d", {"a": 12, "b": 12})
    first = load_dataset("folder", data_root=root)
    again = load_dataset(str(root))
    assert first.split("test") == again.split("test")
    tests = {tuple(s.ref for s in make_split(first, shots=2, seed=seed).test_base) for seed in (1, 2, 3)}
    assert len(tests) == 1


def test_split_subfolders(tmp_path):
    root = tmp_path / "d"
    make_class_folders(root, {"cat": 3, "dog": 3}, sub="train")
    make_class_folders(root, {"cat": 1, "dog": 1}, sub="val")
    make_class_folders(root, {"cat": 2, "dog": 2}, sub="test")
    ds = load_dataset("folder", data_root=root)
    assert ds.info.classnames == ("cat", "dog")
    assert [len(ds.split(p)) for p in ("train", "val", "test")] == [6, 2, 4]
    assert ds.split("val")[0].ref.startswith("val/cat/")
    img = ds.open_image(ds.split("test")[0])
    assert img.mode == "RGB"


def test_split_subfolders_without_val_carve_it_from_train(tmp_path):
    root = tmp_path / "d"
    make_class_folders(root, {"cat": 5, "dog": 5}, sub="train")
    make_class_folders(root, {"cat": 2, "dog": 2}, sub="test")
    ds = load_dataset("folder", data_root=root)
    assert [len(ds.split(p)) for p in ("train", "val", "test")] == [8, 2, 4]
    assert not {s.ref for s in ds.split("train")} & {s.ref for s in ds.split("val")}


def test_split_subfolders_need_test(tmp_path):
    root = make_class_folders(tmp_path / "d", {"cat": 2}, sub="train")
    with pytest.raises(DataError, match="no test/ folder"):
        load_dataset("folder", data_root=root)


@pytest.mark.parametrize("kind", ["txt", "json"])
def test_classname_mapping_file(tmp_path, kind):
    root = make_class_folders(tmp_path / "d", {"n01": 3, "n02": 3})
    if kind == "txt":
        (root / "classnames.txt").write_text("n01 great white shark\nn02 tiger shark\n")
    else:
        (root / "classnames.json").write_text(json.dumps({"n01": "great white shark"}))
    names = load_dataset("folder", data_root=root).info.classnames
    assert names == (("great white shark", "tiger shark") if kind == "txt" else ("great white shark", "n02"))


def test_explicit_mapping_and_overrides(tmp_path):
    root = make_class_folders(tmp_path / "d", {"a": 3, "b": 3})
    mapping = tmp_path / "names.txt"
    mapping.write_text("a\tsea lion\nb\tharbor seal\n")
    ds = load_dataset("folder", data_root=root, classnames_file=mapping, template="a zoo photo of a {}.",
                      domain="marine mammal")
    assert ds.info.classnames == ("sea lion", "harbor seal")
    assert (ds.info.template, ds.info.domain) == ("a zoo photo of a {}.", "marine mammal")
    with pytest.raises(DataError, match="mapping file not found"):
        load_dataset("folder", data_root=root, classnames_file=tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="placeholder"):
        load_dataset("folder", data_root=root, template="a photo")


def test_missing_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match=f"dataset folder not found: {tmp_path / 'nope'}"):
        load_dataset("folder", data_root=tmp_path / "nope")
    with pytest.raises(DataError, match="dataset folder not found"):
        load_dataset(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_dataset("folder", data_root=tmp_path / "empty")
    with pytest.raises(ConfigError, match="--data-root"):
        load_dataset("folder")


def test_class_folder_without_images_fails_at_split(tmp_path):
    root = make_class_folders(tmp_path / "d", {"a": 4, "b": 4})
    (root / "c").mkdir()
    (root / "c" / "readme.md").write_text("x")
    ds = load_dataset("folder", data_root=root)
    with pytest.raises(DataError, match="class 'c' has no training images"):
        make_split(ds, shots=1, seed=1)
