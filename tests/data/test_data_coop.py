"""CoOp's dataset layouts, read from tiny replicas written in the real file formats."""

from __future__ import annotations

import json

import pytest
from helpers.data_fixtures import make_aircraft, make_imagenet, make_split_json_dataset

from ipo_vlm.data import base_novel_labels, load_dataset, make_split
from ipo_vlm.data.coop import COOP_SPECS
from ipo_vlm.errors import ConfigError, DataError

JSON_DATASETS = [n for n, s in COOP_SPECS.items() if s.split_file]
RAW = ["Abyssinian", "american_bulldog", "basset_hound", "Bengal", "yorkshire_terrier"]
COUNTS = {"train": 3, "val": 1, "test": 2}


@pytest.mark.parametrize("name", JSON_DATASETS)
def test_split_json_layouts(tmp_path, name):
    make_split_json_dataset(tmp_path, name, RAW, COUNTS)
    ds = load_dataset(name, data_root=tmp_path)
    assert ds.info.name == name
    assert ds.info.classnames == ("Abyssinian", "american bulldog", "basset hound", "Bengal", "yorkshire terrier")
    assert [len(ds.split(p)) for p in ("train", "val", "test")] == [15, 5, 10]
    assert "{}" in ds.info.template
    split = make_split(ds, shots=2, seed=1)
    assert split.base_classnames == ds.info.classnames[:3]
    assert split.novel_classnames == ds.info.classnames[3:]
    assert len(split.train) == 6 and len(split.val) == 3 and len(split.train_novel) == 4
    assert len(split.test_base) == 6 and len(split.test_novel) == 4
    img = ds.open_image(split.train[0])
    assert img.mode == "RGB" and img.size == (6, 6)


def test_templates_and_domains_follow_coop():
    expected = {
        "oxford_pets": ("a photo of a {}, a type of pet.", "pet"),
        "oxford_flowers": ("a photo of a {}, a type of flower.", "flower"),
        "food101": ("a photo of {}, a type of food.", "food"),
        "fgvc_aircraft": ("a photo of a {}, a type of aircraft.", "aircraft"),
        "dtd": ("{} texture.", "texture"),
        "eurosat": ("a centered satellite photo of {}.", "satellite image"),
        "sun397": ("a photo of a {}.", "scene"),
        "caltech101": ("a photo of a {}.", "object"),
        "stanford_cars": ("a photo of a {}.", "car"),
        "ucf101": ("a photo of a person doing {}.", "action"),
        "imagenet": ("a photo of a {}.", "object"),
    }
    assert {n: (s.template, s.domain) for n, s in COOP_SPECS.items()} == expected


@pytest.mark.parametrize("spelling", ["OxfordPets", "oxford_pets", "oxfordpets", "pets", "Oxford-Pets"])
def test_spellings_resolve(tmp_path, spelling):
    make_split_json_dataset(tmp_path, "oxford_pets", RAW[:2], COUNTS)
    assert load_dataset(spelling, data_root=tmp_path).info.name == "oxford_pets"


def test_other_spellings():
    from ipo_vlm.data import _aliases

    table = _aliases()
    for spelling, name in [("DescribableTextures", "dtd"), ("EuroSAT", "eurosat"), ("FGVCAircraft", "fgvc_aircraft"),
                           ("Food101", "food101"), ("food-101", "food101"), ("Caltech101", "caltech101"),
                           ("StanfordCars", "stanford_cars"), ("UCF101", "ucf101"), ("SUN397", "sun397"),
                           ("ImageNet", "imagenet"), ("OxfordFlowers", "oxford_flowers")]:
        assert table["".join(c for c in spelling.lower() if c.isalnum())] == name


def test_data_root_may_be_the_dataset_folder(tmp_path):
    folder = make_split_json_dataset(tmp_path, "eurosat", ["AnnualCrop", "Forest"], COUNTS)
    assert load_dataset("eurosat", data_root=folder).info.classnames == ("AnnualCrop", "Forest")


def test_thirty_seven_pets_split_nineteen_eighteen(tmp_path):
    raw = [f"breed_{i:02d}" for i in range(37)]
    make_split_json_dataset(tmp_path, "oxford_pets", raw, {"train": 1, "val": 0, "test": 1})
    split = make_split(load_dataset("pets", data_root=tmp_path), shots=1, seed=1)
    assert (len(split.base_classnames), len(split.novel_classnames)) == (19, 18)
    assert split.novel_classnames[0] == "breed 19"
    assert sorted({s.label for s in split.test_novel}) == list(range(18))
    assert all(s.classname == split.novel_classnames[s.label] for s in split.test_novel)


@pytest.mark.parametrize("n,base,novel", [(37, 19, 18), (397, 199, 198), (10, 5, 5), (101, 51, 50), (1000, 500, 500)])
def test_base_novel_sizes(n, base, novel):
    b, nv = base_novel_labels(n)
    assert (len(b), len(nv)) == (base, novel)
    assert b + nv == tuple(range(n))


def test_stanford_cars_paths_relative_to_dataset_folder(tmp_path):
    folder = make_split_json_dataset(tmp_path, "stanford_cars", ["2012 Tesla Model S", "2012 BMW M3 coupe"], COUNTS)
    ds = load_dataset("stanford_cars", data_root=tmp_path)
    assert ds.image_dir == folder
    assert (folder / ds.split("train")[0].ref).is_file()


def test_fgvc_aircraft(tmp_path):
    variants = ["707-320", "A300B4", "Cessna 172", "F-16A/B"]
    make_aircraft(tmp_path, variants, {"train": 2, "val": 1, "test": 2})
    ds = load_dataset("FGVCAircraft", data_root=tmp_path)
    assert ds.info.classnames == tuple(variants)
    train = ds.split("train")
    assert [s.classname for s in train[:3]] == ["707-320", "707-320", "A300B4"]
    assert train[0].ref == "1000000.jpg" and (tmp_path / "fgvc_aircraft" / "images" / "1000000.jpg").is_file()
    split = make_split(ds, shots=2, seed=3)
    assert split.novel_classnames == ("Cessna 172", "F-16A/B")
    assert len(split.test_novel) == 4


def test_fgvc_aircraft_unknown_variant(tmp_path):
    folder = make_aircraft(tmp_path, ["A300B4"], {"train": 1, "val": 1, "test": 1})
    (folder / "images_variant_test.txt").write_text("1000002 Boeing 999\n")
    with pytest.raises(DataError, match="Boeing 999"):
        load_dataset("fgvc_aircraft", data_root=tmp_path)


def test_imagenet_labels_follow_sorted_wnids_and_val_is_test(tmp_path):
    classes = {"n02": "goldfish", "n01": "tench", "n04": "great white shark", "n03": "tiger shark"}
    make_imagenet(tmp_path, classes, train=6, val=2)
    ds = load_dataset("imagenet", data_root=tmp_path)
    assert ds.info.classnames == ("tench", "goldfish", "tiger shark", "great white shark")
    assert len(ds.split("test")) == 8 and all(s.ref.startswith("val/") for s in ds.split("test"))
    split = make_split(ds, shots=4, seed=1)
    assert split.base_classnames == ("tench", "goldfish")
    # validation shots come from the training images but never repeat a training shot
    assert len(split.val) == 4
    assert not {s.ref for s in split.val} & {s.ref for s in split.train}
    assert {s.ref.split("/")[0] for s in split.val} == {"train"}


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found: .*oxford_pets"):
        load_dataset("oxford_pets", data_root=tmp_path)


def test_missing_data_root(tmp_path):
    with pytest.raises(DataError, match="data root not found"):
        load_dataset("dtd", data_root=tmp_path / "nowhere")


def test_missing_split_file(tmp_path):
    folder = make_split_json_dataset(tmp_path, "dtd", ["banded", "braided"], COUNTS)
    (folder / "split_zhou_DescribableTextures.json").unlink()
    with pytest.raises(DataError, match="split file not found: .*split_zhou_DescribableTextures.json"):
        load_dataset("dtd", data_root=tmp_path)


def test_malformed_split_file(tmp_path):
    folder = make_split_json_dataset(tmp_path, "dtd", ["banded", "braided"], COUNTS)
    path = folder / "split_zhou_DescribableTextures.json"
    data = json.loads(path.read_text())
    data["train"][0] = ["banded/x.jpg", "0", "banded"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"train\[0\] is not \[relpath, label, classname\]"):
        load_dataset("dtd", data_root=tmp_path)


def test_split_entry_with_missing_image_fails_at_split_time(tmp_path):
    make_split_json_dataset(tmp_path, "food101", ["apple_pie", "baby_back_ribs"], COUNTS)
    missing = tmp_path / "food-101" / "images" / "baby_back_ribs" / "test_1.jpg"
    missing.unlink()
    ds = load_dataset("food101", data_root=tmp_path)  # loading reads only the split file
    with pytest.raises(DataError, match=f"not found: {missing}"):
        make_split(ds, shots=1, seed=1)


def test_corrupt_image_names_the_file(tmp_path):
    make_split_json_dataset(tmp_path, "ucf101", ["Apply_Eye_Makeup", "Archery"], COUNTS)
    ds = load_dataset("ucf101", data_root=tmp_path)
    sample = ds.split("train")[0]
    path = ds.image_dir / sample.ref
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=f"cannot read image {path}"):
        ds.open_image(sample)
    path.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=f"cannot read image {path}"):
        ds.open_image(sample)


def test_unknown_name_lists_known(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_dataset("oxford_petz", data_root=tmp_path)
    assert "oxford_pets" in str(e.value) and "eurosat" in str(e.value) and "demo" in str(e.value)


def test_coop_dataset_needs_data_root():
    with pytest.raises(ConfigError, match="--data-root"):
        load_dataset("sun397")


def test_content_id_is_sha256_of_file(tmp_path):
    import hashlib

    make_split_json_dataset(tmp_path, "caltech101", ["accordion", "airplanes"], COUNTS)
    ds = load_dataset("caltech101", data_root=tmp_path)
    s = ds.split("test")[0]
    assert ds.content_id(s) == hashlib.sha256((ds.image_dir / s.ref).read_bytes()).hexdigest()
    assert ds.content_id(s) != ds.content_id(ds.split("test")[1])
