"""Images are decoded before any LLM token is spent (once per file content), 16-bit images are
scaled rather than clipped, and an image too large to decode is one file's error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers.data_fixtures import make_class_folders
from PIL import Image

from ipo_vlm.data import files, load_dataset, make_split
from ipo_vlm.errors import DataError


def _truncated_jpeg(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_jpeg_passes_the_header_check_but_not_the_decode(tmp_path):
    bad = _truncated_jpeg(tmp_path / "cut.jpg")
    files.verify_image(bad)  # the header is fine: this is why a header check is not enough
    with pytest.raises(DataError, match="cut.jpg"):
        files.decode_check([bad])


def test_each_image_content_is_decoded_once(tmp_path, monkeypatch):
    root = make_class_folders(tmp_path / "ds", {"a": 3, "b": 3, "c": 3, "d": 3})
    ds = load_dataset(str(root))
    samples = ds.split("train") + ds.split("test")
    ds.verify_samples(samples)
    decoded = []
    monkeypatch.setattr(files, "open_rgb", lambda p: decoded.append(p))
    ds.verify_samples(samples)
    assert decoded == []  # known by content: hashed, not decoded again
    ds.path(samples[-1]).unlink()
    with pytest.raises(DataError, match="not found"):
        ds.verify_samples(samples)


def test_a_missing_image_on_resume_says_what_to_do(tmp_path):
    from ipo_vlm.config import preset
    from ipo_vlm.runs.optimize import _split_with_images
    from ipo_vlm.runs.rundir import RunDir

    root = make_class_folders(tmp_path / "ds", {"a": 4, "b": 4, "c": 4, "d": 4})
    ds = load_dataset(str(root))
    config = preset("demo").updated(data={"dataset": str(root), "shots": 2})
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    split = _split_with_images(rd, ds, config, resume=False)
    Path(ds.path(split.test_novel[0])).unlink()
    with pytest.raises(DataError, match=r"not found.*split.json lists it: put the file back.*another --out"):
        _split_with_images(rd, load_dataset(str(root)), config, resume=True)


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0 .. 63000 of 65535
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    rgb = np.asarray(files.open_rgb(tmp_path / "deep.png"))
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    expected = np.rint(ramp / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(rgb[..., 0], expected)
    assert (rgb == 255).mean() < 0.05  # clipping made 57 % of such pixels white


def test_a_decompression_bomb_is_one_files_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # a 40x40 image now counts as 2x over the limit
    Image.new("RGB", (60, 60)).save(tmp_path / "huge.png")
    with pytest.raises(DataError, match=r"huge.png: too large to decode safely"):
        files.open_rgb(tmp_path / "huge.png")


def test_a_split_that_cannot_tell_templates_apart_is_refused_before_the_llm(tmp_path, caplog):
    from ipo_vlm.runs.optimize import _check_discriminates

    two = load_dataset(str(make_class_folders(tmp_path / "two", {"cat": 4, "dog": 4})))
    with pytest.raises(DataError, match="1 base class"):
        _check_discriminates(make_split(two, shots=2, seed=1))
    from ipo_vlm.config import preset
    from ipo_vlm.runs.optimize import _split_with_images
    from ipo_vlm.runs.rundir import RunDir

    (tmp_path / "run").mkdir()
    with pytest.raises(DataError, match="the dataset has 2 class"):
        _split_with_images(RunDir(tmp_path / "run"), two, preset("demo"), resume=False)
    assert not (tmp_path / "run" / "split.json").exists()
    three = load_dataset(str(make_class_folders(tmp_path / "three", {"cat": 4, "dog": 4, "owl": 4})))
    with caplog.at_level("WARNING"):
        _check_discriminates(make_split(three, shots=2, seed=1))
    assert "1 novel class" in caplog.text
