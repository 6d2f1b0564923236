"""The seeded few-shot sampler and the base/novel protocol."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
from helpers.data_fixtures import make_split_json_dataset

from ipo_vlm.data import TaskSplit, base_novel_labels, load_dataset, load_split, make_split
from ipo_vlm.data.fewshot import class_halves
from ipo_vlm.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def demo():
    return load_dataset("demo")


def refs(samples):
    return [s.ref for s in samples]


def test_same_seed_same_files(demo):
    a, b = make_split(demo, shots=16, seed=1), make_split(demo, shots=16, seed=1)
    assert a.to_json() == b.to_json()


def test_different_seeds_differ(demo):
    picks = [set(refs(make_split(demo, shots=4, seed=s).train)) for s in (1, 2, 3)]
    assert picks[0] != picks[1] and picks[1] != picks[2] and picks[0] != picks[2]


def test_smaller_k_is_subset_of_larger_k(demo):
    sixteen = make_split(demo, shots=16, seed=2)
    for k in (1, 2, 4, 8):
        smaller = make_split(demo, shots=k, seed=2)
        assert set(refs(smaller.train)) <= set(refs(sixteen.train))
        assert set(refs(smaller.train_novel)) <= set(refs(sixteen.train_novel))
        assert len(smaller.train) == 5 * k


def test_selection_is_the_documented_hash_ranking(demo):
    # recomputed here from the rule alone: rank by sha256("<seed>:<ref>"), keep the first K
    split = make_split(demo, shots=3, seed=7)
    for label, name in enumerate(demo.info.classnames[:5]):
        pool = [s.ref for s in demo.split("train") if s.label == label]
        expected = sorted(pool, key=lambda r: hashlib.sha256(f"7:{r}".encode()).hexdigest())[:3]
        assert [s.ref for s in split.train if s.classname == name] == expected


def test_val_takes_min_k_4(demo):
    assert len(make_split(demo, shots=1, seed=1).val) == 5
    assert len(make_split(demo, shots=2, seed=1).val) == 10
    assert len(make_split(demo, shots=16, seed=1).val) == 20
    assert {s.ref.split("/")[0] for s in make_split(demo, shots=16, seed=1).val} == {"val"}


def test_labels_reindexed_within_each_half(demo):
    split = make_split(demo, shots=2, seed=1)
    assert split.base_classnames == ("t-shirt", "trouser", "pullover", "dress", "coat")
    assert split.novel_classnames == ("sandal", "shirt", "sneaker", "bag", "ankle boot")
    for part, names in (("train", split.base_classnames), ("val", split.base_classnames),
                        ("train_novel", split.novel_classnames), ("test_base", split.base_classnames),
                        ("test_novel", split.novel_classnames)):
        samples = split.part(part)
        assert {s.label for s in samples} == set(range(5))
        assert all(names[s.label] == s.classname for s in samples)
    assert split.base_labels == (0, 1, 2, 3, 4) and split.novel_labels == (5, 6, 7, 8, 9)
    # every test image lands in exactly one half
    assert len(split.test_base) + len(split.test_novel) == len(demo.split("test"))


def test_random_class_split_draws_the_halves_from_the_seed(demo):
    names = demo.info.classnames
    halves = []
    for seed in range(1, 6):
        split = make_split(demo, shots=2, seed=seed, class_split="random")
        # recomputed from the documented rule: rank class names by sha256("<seed>:class:<name>")
        ranked = sorted(names, key=lambda n: hashlib.sha256(f"{seed}:class:{n}".encode()).hexdigest())
        assert set(split.base_classnames) == set(ranked[:5]) and set(split.novel_classnames) == set(ranked[5:])
        # each half keeps the dataset's label order, and the labels name the same classes
        assert list(split.base_labels) == sorted(split.base_labels)
        assert tuple(names[i] for i in split.base_labels) == split.base_classnames
        assert tuple(names[i] for i in split.novel_labels) == split.novel_classnames
        assert all(split.base_classnames[s.label] == s.classname for s in split.train + split.test_base)
        assert all(split.novel_classnames[s.label] == s.classname for s in split.train_novel + split.test_novel)
        assert len(split.test_base) + len(split.test_novel) == len(demo.split("test"))
        halves.append(split.base_classnames)
    assert len(set(halves)) >= 3
    assert make_split(demo, shots=2, seed=3, class_split="random") == make_split(demo, shots=2, seed=3, class_split="random")


def test_class_split_changes_the_halves_not_the_shots(demo):
    ordered = make_split(demo, shots=4, seed=2)
    drawn = make_split(demo, shots=4, seed=2, class_split="random")
    both = {s.ref for s in ordered.train + ordered.train_novel}
    assert both == {s.ref for s in drawn.train + drawn.train_novel}
    assert ordered.base_classnames != drawn.base_classnames


@pytest.mark.parametrize("n", [2, 3, 7])
def test_random_halves_have_the_protocols_sizes(n):
    names = [f"c{i}" for i in range(n)]
    for seed in range(1, 8):
        base, novel = class_halves(names, seed, "random")
        assert len(base) == len(base_novel_labels(n)[0]) and sorted(base + novel) == list(range(n))


def test_unknown_class_split_is_a_config_error(demo):
    with pytest.raises(ConfigError, match="class_split must be one of ordered, random; got 'shuffled'"):
        make_split(demo, shots=1, seed=1, class_split="shuffled")


def test_random_split_round_trips_through_json(demo, tmp_path):
    split = make_split(demo, shots=2, seed=4, class_split="random")
    split.save(tmp_path / "split.json")
    assert load_split(tmp_path / "split.json", demo) == split


def test_json_round_trip(demo, tmp_path):
    split = make_split(demo, shots=4, seed=3)
    split.save(tmp_path / "split.json")
    raw = json.loads((tmp_path / "split.json").read_text())
    assert raw["dataset"] == "demo" and raw["shots"] == 4 and raw["seed"] == 3
    assert raw["counts"]["train"] == [4] * 5 and raw["counts"]["test_base"] == [200] * 5
    assert raw["samples"]["train"][0][0].startswith("train/")
    back = load_split(tmp_path / "split.json", demo)
    assert back == split


def test_from_json_rejects_other_dataset(demo, tmp_path):
    make_split_json_dataset(tmp_path, "eurosat", [f"c{i}" for i in range(10)], {"train": 1, "val": 1, "test": 1})
    other = load_dataset("eurosat", data_root=tmp_path)
    with pytest.raises(DataError, match="'demo', not 'eurosat'"):
        TaskSplit.from_json(make_split(demo, shots=1, seed=1).to_json(), other)
    broken = make_split(demo, shots=1, seed=1).to_json()
    broken["samples"]["train"][0][1] = 99
    with pytest.raises(DataError, match="malformed split"):
        TaskSplit.from_json(broken, demo)


def short_dataset(tmp_path):
    make_split_json_dataset(tmp_path, "dtd", ["banded", "blotchy", "braided", "bubbly"],
                            {"train": 5, "val": 2, "test": 1})
    path = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    data = json.loads(path.read_text())
    data["train"] = [row for row in data["train"] if not (row[2] == "blotchy" and not row[0].endswith("_0.jpg"))]
    path.write_text(json.dumps(data))
    return load_dataset("dtd", data_root=tmp_path)


def test_class_with_fewer_than_k_takes_what_exists(tmp_path, caplog):
    ds = short_dataset(tmp_path)
    with caplog.at_level(logging.WARNING, logger="ipo_vlm.data"):
        split = make_split(ds, shots=4, seed=1)
    assert split.counts()["train"] == [4, 1]
    train_short = [s for s in split.short_classes if s["part"] == "train"]
    assert train_short == [{"part": "train", "classname": "blotchy", "available": 1, "wanted": 4}]
    assert "fewer than 4 training images" in caplog.text and "'blotchy' (1)" in caplog.text
    assert split.to_json()["short_classes"] == split.short_classes
    # val asked for min(4, 4) = 4 but each class has 2
    assert split.counts()["val"] == [2, 2]


def test_class_with_fewer_than_k_strict(tmp_path):
    with pytest.raises(DataError, match="class 'blotchy' has 1 training images, fewer than 4 shots"):
        make_split(short_dataset(tmp_path), shots=4, seed=1, strict=True)


def test_class_with_no_training_images_is_an_error(tmp_path):
    make_split_json_dataset(tmp_path, "dtd", ["banded", "blotchy"], {"train": 2, "val": 1, "test": 1})
    path = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    data = json.loads(path.read_text())
    data["train"] = [row for row in data["train"] if row[2] != "blotchy"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="class 'blotchy' has no training images"):
        make_split(load_dataset("dtd", data_root=tmp_path), shots=1, seed=1)


@pytest.mark.parametrize("shots", [0, -1, 1.5, True])
def test_bad_shots(demo, shots):
    with pytest.raises(ConfigError, match="shots"):
        make_split(demo, shots=shots, seed=1)
