"""The bundled Fashion-MNIST demo dataset and the script that builds it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ipo_vlm.data import load_dataset, make_split
from ipo_vlm.data.demo import ASSET_DIR, NPZ_NAME
from ipo_vlm.errors import DataError

REPO = Path(__file__).resolve().parents[2]
FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_demo_classes_and_sizes():
    ds = load_dataset("demo", data_root="/ignored")
    assert ds.info.classnames == ("t-shirt", "trouser", "pullover", "dress", "coat",
                                  "sandal", "shirt", "sneaker", "bag", "ankle boot")
    assert (ds.info.template, ds.info.domain) == ("a photo of a {}.", "clothing item")
    test_counts = Counter(s.label for s in ds.split("test"))
    assert len(test_counts) == 10 and min(test_counts.values()) >= 100
    assert min(Counter(s.label for s in ds.split("train")).values()) >= 16
    split = make_split(ds, shots=16, seed=1)
    assert (len(split.base_classnames), len(split.novel_classnames)) == (5, 5)
    assert len(split.test_base) >= 500 and len(split.test_novel) >= 500
    # pools are disjoint: no image appears in two of them
    ids = {p: {ds.content_id(s) for s in ds.split(p)[::50]} for p in ("train", "val", "test")}
    assert not ids["train"] & ids["test"] and not ids["val"] & ids["train"]


def test_demo_images_and_content_ids():
    ds = load_dataset("demo")
    sample = ds.split("train")[123]
    assert sample.ref == "train/123"
    img = ds.open_image(sample)
    assert img.mode == "RGB" and img.size == (28, 28)
    arr = np.asarray(img)
    assert (arr[..., 0] == arr[..., 1]).all() and arr.std() > 0  # grey, not blank
    raw = ds.array(sample)
    assert raw.dtype == np.uint8 and raw.shape == (28, 28)
    assert ds.content_id(sample) == hashlib.sha256(b"uint8(28, 28):" + raw.tobytes()).hexdigest()
    with pytest.raises(DataError, match="no demo image 'train/999999'"):
        ds.open_image(type(sample)("train/999999", 0, "t-shirt"))


def test_asset_is_small_and_matches_its_record():
    data = (ASSET_DIR / NPZ_NAME).read_bytes()
    record = json.loads((ASSET_DIR / "fashion_mnist_demo.json").read_text())
    assert len(data) < 3_000_000
    assert hashlib.sha256(data).hexdigest() == record["sha256"]


def test_build_script_reproduces_the_asset(tmp_path):
    # `make test` installs Debian's dataset-fashion-mnist: its absence is a broken set-up, not a skip
    assert FASHION.is_dir(), f"{FASHION} is missing: install Debian's dataset-fashion-mnist (make test does)"
    subprocess.run([sys.executable, str(REPO / "scripts" / "build_demo_data.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    assert (tmp_path / NPZ_NAME).read_bytes() == (ASSET_DIR / NPZ_NAME).read_bytes()
    labels = np.load(tmp_path / NPZ_NAME)["test_labels"]
    assert np.bincount(labels).tolist() == [200] * 10
