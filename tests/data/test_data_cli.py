"""`ipo data`: the summary, split.json, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
from helpers.data_fixtures import make_split_json_dataset

from ipo_vlm.cli.main import main

COUNTS = {"train": 2, "val": 1, "test": 1}


def run(capsys, *argv):
    rc = main(["data", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def one_line_error(capsys, *argv) -> str:
    rc, _, err = run(capsys, *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipo: error: "), err
    return lines[0]


def test_demo_summary_and_split_json(capsys, tmp_path):
    out_file = tmp_path / "run" / "split.json"
    rc, out, _ = run(capsys, "--dataset", "demo", "--shots", "2", "--seed", "3", "--out", str(out_file),
                     "--check-images")
    assert rc == 0
    assert "10 classes (5 base / 5 novel)" in out
    assert "clothing item" in out and "a photo of a {}." in out
    assert "train             10 images" in out and "test_novel      1000 images" in out
    assert "checked   30 images decode" in out
    saved = json.loads(out_file.read_text())
    assert saved["seed"] == 3 and len(saved["samples"]["train"]) == 10


def test_random_class_split(capsys):
    rc, ordered, _ = run(capsys, "--dataset", "demo", "--shots", "1", "--seed", "3")
    rc2, drawn, _ = run(capsys, "--dataset", "demo", "--shots", "1", "--seed", "3", "--class-split", "random")
    assert rc == rc2 == 0
    assert "base      t-shirt, trouser, pullover, dress, coat" in ordered
    base = next(line for line in drawn.splitlines() if line.startswith("base "))
    assert base != "base      t-shirt, trouser, pullover, dress, coat" and len(base[10:].split(", ")) == 5
    with pytest.raises(SystemExit) as e:
        main(["data", "--dataset", "demo", "--class-split", "shuffled"])
    assert e.value.code == 2 and "argument --class-split: invalid choice" in capsys.readouterr().err


def test_pets_via_alias(capsys, tmp_path):
    make_split_json_dataset(tmp_path, "oxford_pets", ["Abyssinian", "Bengal", "pug"], COUNTS)
    rc, out, _ = run(capsys, "--dataset", "OxfordPets", "--data-root", str(tmp_path), "--shots", "1")
    assert rc == 0
    assert "oxford_pets: 3 classes (2 base / 1 novel)" in out and "a type of pet." in out


def test_missing_folder(capsys, tmp_path):
    line = one_line_error(capsys, "--dataset", "folder", "--data-root", str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in line


def test_missing_split_file(capsys, tmp_path):
    (tmp_path / "eurosat" / "2750").mkdir(parents=True)
    line = one_line_error(capsys, "--dataset", "eurosat", "--data-root", str(tmp_path))
    assert "split file not found" in line and "split_zhou_EuroSAT.json" in line


def test_split_entry_whose_image_is_missing(capsys, tmp_path):
    make_split_json_dataset(tmp_path, "oxford_flowers", ["pink_primrose", "globe_thistle"], COUNTS)
    gone = tmp_path / "oxford_flowers" / "jpg" / "globe_thistle" / "train_1.jpg"
    gone.unlink()
    line = one_line_error(capsys, "--dataset", "flowers", "--data-root", str(tmp_path), "--shots", "2")
    assert str(gone) in line and "not found" in line


def test_corrupt_image(capsys, tmp_path):
    make_split_json_dataset(tmp_path, "sun397", ["abbey", "airport_terminal"], {"train": 1, "val": 1, "test": 1})
    bad = tmp_path / "sun397" / "SUN397" / "abbey" / "train_0.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    rc, _, _ = run(capsys, "--dataset", "sun397", "--data-root", str(tmp_path), "--shots", "1")
    assert rc == 0  # existence is all that is checked without --check-images
    line = one_line_error(capsys, "--dataset", "sun397", "--data-root", str(tmp_path), "--shots", "1",
                          "--check-images")
    assert f"cannot read image {bad}" in line


def test_class_with_fewer_than_k_images(capsys, caplog, tmp_path):
    make_split_json_dataset(tmp_path, "caltech101", ["accordion", "airplanes"], COUNTS)
    rc, out, _ = run(capsys, "--dataset", "caltech101", "--data-root", str(tmp_path), "--shots", "4",
                       "--out", str(tmp_path / "split.json"))
    assert rc == 0
    # the warning goes through logging (stderr outside pytest); the summary repeats it
    assert "fewer than 4 training images" in caplog.text and "fewer than 4 training images" in out
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["counts"]["train"] == [2] and saved["counts"]["train_novel"] == [2]
    line = one_line_error(capsys, "--dataset", "caltech101", "--data-root", str(tmp_path), "--shots", "4",
                          "--strict-shots")
    assert "class 'accordion' has 2 training images, fewer than 4 shots" in line


def test_unknown_dataset_lists_known(capsys):
    line = one_line_error(capsys, "--dataset", "cifar10")
    assert "unknown dataset 'cifar10'" in line
    for name in ("demo", "folder", "oxford_pets", "imagenet", "fgvc_aircraft"):
        assert name in line


@pytest.mark.parametrize("shots", ["0", "-3"])
def test_bad_shots(capsys, shots):
    assert "shots" in one_line_error(capsys, "--shots", shots)
