"""The dry run's compute estimate: images the feature store lacks, prompts per step, and the
VLM timed on a sample, on a folder dataset and a tiny CLIP with CLIP's real tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.data_fixtures import make_class_folders

from ipo_vlm.config import preset
from ipo_vlm.data import load_dataset, make_split
from ipo_vlm.engine.features import FeatureStore
from ipo_vlm.engine.preflight import duration, estimate_compute, estimate_grid, needed_samples
from ipo_vlm.testing.real_clip import build_real_clip
from ipo_vlm.vlm import create_vlm


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("preflight")
    clip = build_real_clip(root / "clip", "tiny")
    data = make_class_folders(root / "tools", {"hammer": 6, "wrench": 6, "saw": 6, "power drill": 6, "pliers": 6})
    return {"clip": f"hf:{clip}", "data": str(data)}


def _config(world: dict, **optimize) -> object:
    return preset("demo").updated(data={"dataset": "folder", "data_root": world["data"], "shots": 2, "seed": 1},
                                  vlm=world["clip"], captioner={"spec": "none"},
                                  optimize={"steps": 100, "candidates": 5, "select_on": "train", "control": "none",
                                            "ensemble": 0, **optimize})


def test_estimate_counts_images_and_prompts_then_sees_stored_features(world, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    config = _config(world)
    dataset = load_dataset("folder", world["data"])
    vlm = create_vlm(world["clip"])
    split = make_split(dataset, 2, 1)
    needed = needed_samples(split, with_val=False)
    est = estimate_compute(config, dataset, vlm)
    assert est.images_needed == len(needed) and est.images_to_encode == len(needed) and not est.images_sampled
    assert est.sec_per_image is not None and est.sec_per_image > 0 and est.sec_per_prompt > 0
    # 5 classes: 3 base, 2 novel; 2 seeds + 100 x 5 candidates on base, 3 templates on novel
    assert est.prompts_per_step == 5 * 3 and est.steps == 100
    assert est.prompts_total == (2 + 500) * 3 + 3 * 2
    assert est.text_seconds == pytest.approx(est.prompts_total * est.sec_per_prompt)
    assert not (tmp_path / "cache" / "text").exists()  # timing writes no cache
    # once the training images are stored, only the test images remain to encode
    FeatureStore(vlm).features(dataset, split.train)
    after = estimate_compute(config, dataset, vlm)
    assert after.images_to_encode == len(needed) - len(split.train)
    lines = after.lines()
    assert lines[0].startswith(f"images to encode: {after.images_to_encode:,} of {len(needed):,} not in the feature store")
    assert "15 per step x 100 steps" in lines[1]
    # a fixed method scores no steps; a random control doubles the search
    assert estimate_compute(config, dataset, vlm, searches=False).prompts_per_step == 0
    doubled = estimate_compute(_config(world, control="random"), dataset, vlm)
    assert doubled.prompts_total == (2 + 1000) * 3 + 3 * 2


def test_grid_estimate_counts_shared_images_once(world, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("IPO_CACHE_DIR", str(tmp_path / "cache"))
    one = _config(world)
    other_seed = one.updated(data={"seed": 2})
    grid = estimate_grid([(one, True), (other_seed, True), (one, False)])
    singles = [r.images_to_encode for r in grid.runs]
    # the test split is the same for every seed: the union is smaller than the sum
    assert max(singles) <= grid.images_to_encode < sum(singles)
    assert grid.runs[2].prompts_per_step == 0 and grid.runs[0].prompts_total == grid.runs[1].prompts_total
    assert "over 3 cells" in grid.lines()[1] and grid.devices == ("cpu",)


def test_duration_reads_naturally() -> None:
    assert [duration(s) for s in (3.25, 45, 720, 4 * 3600)] == ["3.2 s", "45 s", "12 min", "4.0 h"]
