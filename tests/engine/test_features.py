"""FeatureStore: computes each image once, reuses across calls and processes, survives crashes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ipo_vlm.data.base import Dataset, DatasetInfo, Sample
from ipo_vlm.errors import DataError
from ipo_vlm.engine.features import FeatureStore, VectorLog, key_bytes


class PngDataset(Dataset):
    """Generated PNG files in a folder; content id = sha256 of the file bytes."""

    def __init__(self, root: Path, n: int, seed: int = 0) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        self.info = DatasetInfo("pngs", ("a", "b"), "a photo of a {}.", "thing")
        self.samples = []
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(root / f"{i}.png")
            self.samples.append(Sample(f"{i}.png", i % 2, "ab"[i % 2]))

    def split(self, name: str) -> list[Sample]:
        return list(self.samples)

    def open_image(self, sample: Sample) -> Image.Image:
        try:
            return Image.open(self.root / sample.ref).convert("RGB")
        except OSError as e:
            raise DataError(f"cannot read image {self.root / sample.ref}: {e}") from None

    def content_id(self, sample: Sample) -> str:
        return hashlib.sha256((self.root / sample.ref).read_bytes()).hexdigest()


class CountingVLM:
    """Deterministic features from pixel means; counts the images it is asked to encode."""

    model_id = "counting-v1"
    preprocess_id = "mean-rgb"
    logit_scale = 100.0
    max_text_tokens = 77

    def __init__(self) -> None:
        self.encoded = 0

    def encode_images(self, images):
        self.encoded += len(images)
        rows = [np.r_[np.asarray(im, dtype=np.float32).mean(axis=(0, 1)), im.height] for im in images]
        x = np.asarray(rows, dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def _expected(vlm: CountingVLM, ds: PngDataset, samples) -> np.ndarray:
    return CountingVLM().encode_images([ds.open_image(s) for s in samples])


def test_computes_once_and_reuses_subsets(tmp_path: Path) -> None:
    ds = PngDataset(tmp_path / "img", 10)
    vlm = CountingVLM()
    store = FeatureStore(vlm, cache_root=tmp_path / "cache")
    calls: list[tuple[int, int]] = []
    all_feats = store.features(ds, ds.samples, batch_size=4, progress=lambda d, t: calls.append((d, t)))
    assert all_feats.shape == (10, 4) and all_feats.dtype == np.float32
    np.testing.assert_allclose(all_feats, _expected(vlm, ds, ds.samples), rtol=1e-6)
    assert calls == [(0, 10), (4, 10), (8, 10), (10, 10)]
    assert store.stats == {"hits": 0, "computed": 10} and vlm.encoded == 10
    subset = [ds.samples[7], ds.samples[2], ds.samples[7]]  # a "1-shot" subset, in another order
    np.testing.assert_array_equal(store.features(ds, subset), all_feats[[7, 2, 7]])
    assert vlm.encoded == 10 and store.stats == {"hits": 3, "computed": 10}


def test_new_store_reads_disk_and_other_model_does_not(tmp_path: Path) -> None:
    ds = PngDataset(tmp_path / "img", 6)
    first = FeatureStore(CountingVLM(), cache_root=tmp_path / "cache").features(ds, ds.samples[:4])
    vlm = CountingVLM()
    store = FeatureStore(vlm, cache_root=tmp_path / "cache")
    again = store.features(ds, ds.samples)
    np.testing.assert_array_equal(again[:4], first)
    assert vlm.encoded == 2 and store.stats == {"hits": 4, "computed": 2}
    other = CountingVLM()
    other.preprocess_id = "other-transform"
    FeatureStore(other, cache_root=tmp_path / "cache").features(ds, ds.samples)
    assert other.encoded == 6


def test_identical_bytes_are_one_entry(tmp_path: Path) -> None:
    ds = PngDataset(tmp_path / "img", 3)
    (tmp_path / "img" / "copy.png").write_bytes((tmp_path / "img" / "1.png").read_bytes())
    samples = ds.samples + [Sample("copy.png", 1, "b")]
    vlm = CountingVLM()
    feats = FeatureStore(vlm, cache_root=tmp_path / "cache").features(ds, samples)
    assert vlm.encoded == 3
    np.testing.assert_array_equal(feats[3], feats[1])


def test_corrupt_image_names_its_path(tmp_path: Path) -> None:
    ds = PngDataset(tmp_path / "img", 3)
    (tmp_path / "img" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"1\.png"):
        FeatureStore(CountingVLM(), cache_root=tmp_path / "cache").features(ds, ds.samples)


def test_torn_tail_and_junk_segments_are_ignored(tmp_path: Path) -> None:
    log = VectorLog(tmp_path / "shard")
    vecs = np.arange(12, dtype=np.float32).reshape(3, 4)
    keys = [key_bytes(f"k{i}") for i in range(3)]
    log.put_many(keys, vecs)
    seg = next((tmp_path / "shard").glob("seg-*.bin"))
    with open(seg, "ab") as f:  # a record cut short, as a kill -9 mid-write leaves it
        f.write(key_bytes("k9") + b"\x00\x01")
    (tmp_path / "shard" / "seg-empty.bin").write_bytes(b"")
    (tmp_path / "shard" / "seg-junk.bin").write_bytes(b"not a segment at all")
    fresh = VectorLog(tmp_path / "shard")
    assert len(fresh) == 3 and key_bytes("k9") not in fresh
    np.testing.assert_array_equal(fresh.get(keys[2]), vecs[2])


_WRITER = """
import sys, numpy as np
from pathlib import Path
from ipo_vlm.engine.features import VectorLog, key_bytes
log = VectorLog(Path(sys.argv[1]))
tag = sys.argv[2]
for i in range(50):
    log.put_many([key_bytes(f"{tag}-{i}")], np.full((1, 8), i, dtype=np.float32))
"""


def test_concurrent_writers_do_not_clobber_each_other(tmp_path: Path) -> None:
    shard = tmp_path / "shard"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(shard), tag], env=env) for tag in "ab"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    log = VectorLog(shard)
    assert len(log) == 100
    assert log.get(key_bytes("b-49"))[0] == 49.0 and log.get(key_bytes("a-3"))[5] == 3.0


def test_cli_features_reuses_cache_across_shots_and_seeds(tmp_path: Path, monkeypatch, capsys) -> None:
    from ipo_vlm.cli.main import main
    from ipo_vlm.testing.tiny_clip import build_tiny_clip

    rng = np.random.default_rng(5)
    for c in ("red_fox", "cat", "owl", "dog"):
        (tmp_path / "ds" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (30, 34, 3), dtype=np.uint8)).save(tmp_path / "ds" / c / f"{i}.png")
    clip = build_tiny_clip(tmp_path / "clip")
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    base = ["features", "--dataset", str(tmp_path / "ds"), "--vlm", f"hf:{clip}", "--batch-size", "8"]
    assert main(base + ["--shots", "2"]) == 0
    first = capsys.readouterr().out
    assert "0 already cached" in first
    n_first = int(first.split(": ")[1].split(" images")[0])
    # 1-shot images are a subset of the 2-shot ones and the test parts are shared: nothing new
    assert main(base + ["--shots", "1"]) == 0
    assert " 0 encoded" in capsys.readouterr().out
    assert main(base + ["--all"]) == 0
    out = capsys.readouterr().out
    assert "40 images" in out and f"{n_first} already cached" in out
    assert list((tmp_path / "cache" / "features").iterdir())
    assert main(["features", "--dataset", str(tmp_path / "ds"), "--vlm", f"hf:{tmp_path / 'nope'}"]) == 2
    assert "ipo: error: no model directory" in capsys.readouterr().err


def test_cli_features_encodes_the_split_of_the_class_split_asked_for(tmp_path: Path, monkeypatch, capsys) -> None:
    from ipo_vlm.cli.main import main
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.data.fewshot import PARTS

    dataset = load_dataset("demo")

    def refs(class_split: str) -> set[str]:
        split = make_split(dataset, shots=2, seed=3, class_split=class_split)
        return {s.ref for name in PARTS for s in split.part(name)}

    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    base = ["features", "--dataset", "demo", "--vlm", "demo:fashion", "--shots", "2", "--seed", "3"]
    assert main(base) == 0
    assert f": {len(refs('ordered'))} images" in capsys.readouterr().out
    assert main([*base, "--class-split", "random"]) == 0
    out = capsys.readouterr().out
    # the random halves' images, of which those already encoded for the protocol's halves are cached
    assert f": {len(refs('random'))} images" in out and f"{len(refs('random') & refs('ordered'))} already cached" in out
