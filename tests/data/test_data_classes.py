"""Class lists the classifier cannot use: two folders under one class name (an error), and a
class without test images (a warning, recorded in split.json)."""

from __future__ import annotations

import json
import logging

import pytest
from helpers.data_fixtures import make_class_folders

from ipo_vlm.cli.main import main
from ipo_vlm.data import load_dataset, make_split
from ipo_vlm.data.base import DatasetInfo, check_distinct_classnames
from ipo_vlm.errors import DataError


def test_two_folders_with_one_class_name_are_an_error(tmp_path) -> None:
    make_class_folders(tmp_path, {"big_cat": 6, "big cat": 6, "dog": 6, "owl": 6})
    with pytest.raises(DataError, match="folders 'big cat' and 'big_cat' both map to the class name 'big cat'"):
        load_dataset("folder", tmp_path)


def test_a_mapping_file_that_names_two_folders_alike_is_an_error(tmp_path) -> None:
    make_class_folders(tmp_path / "ds", {"n01": 6, "n02": 6, "n03": 6})
    names = tmp_path / "names.txt"
    names.write_text("n01 Tabby Cat\nn02 tabby  cat\nn03 dog\n")
    with pytest.raises(DataError, match="'n01' and 'n02' both map to the class name 'tabby  cat'"):
        load_dataset("folder", tmp_path / "ds", classnames_file=names)


def test_any_dataset_with_duplicate_names_cannot_be_split() -> None:
    with pytest.raises(DataError, match="classes 0 and 2 are both named 'cat'"):
        check_distinct_classnames(DatasetInfo("x", ("cat", "dog", "cat"), "{}", "pet").classnames)


def test_a_class_without_test_images_is_warned_and_recorded(tmp_path, caplog, capsys) -> None:
    make_class_folders(tmp_path / "ds", {"cat": 6, "dog": 6, "owl": 6, "fox": 6}, sub="train")
    make_class_folders(tmp_path / "ds", {"cat": 2, "dog": 2, "fox": 2}, sub="test")
    ds = load_dataset("folder", tmp_path / "ds")
    with caplog.at_level(logging.WARNING):
        split = make_split(ds, shots=2, seed=1)
    assert {"part": "test", "classname": "owl", "available": 0, "wanted": 1} in split.short_classes
    assert "no test images and are not evaluated: 'owl'" in caplog.text
    out = tmp_path / "split.json"
    assert main(["data", "--dataset", str(tmp_path / "ds"), "--shots", "2", "--out", str(out)]) == 0
    assert "warning   1 class(es) have no test images: owl" in capsys.readouterr().out
    assert {"part": "test", "classname": "owl", "available": 0, "wanted": 1} in json.loads(out.read_text())["short_classes"]


def test_a_mapping_file_for_the_demo_is_refused_not_ignored(tmp_path) -> None:
    from ipo_vlm.errors import ConfigError

    names = tmp_path / "names.txt"
    names.write_text("a b\n")
    with pytest.raises(ConfigError, match="folder datasets only"):
        load_dataset("demo", classnames_file=names)
