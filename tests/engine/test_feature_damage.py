"""NaN is never a feature: damaged bytes in a cache segment are dropped (and computed again),
and a VLM that returns non-finite features is an error, not a cached number."""

from __future__ import annotations

import numpy as np
import pytest

from ipo_vlm.engine.features import FeatureStore, VectorLog, key_bytes
from ipo_vlm.errors import BackendError
from ipo_vlm.testing.fakes import FakeDataset, FakeVLM


def test_damaged_records_of_a_segment_are_dropped_with_a_warning(tmp_path, caplog):
    log = VectorLog(tmp_path / "shard")
    vecs = np.full((4, 8), 0.25, dtype=np.float32)
    keys = [key_bytes(f"k{i}") for i in range(4)]
    log.put_many(keys, vecs)
    seg = next((tmp_path / "shard").glob("seg-*.bin"))
    raw = bytearray(seg.read_bytes())
    record = 32 + 4 * 8
    header = len(raw) - 4 * record
    raw[header + record + 32 : header + record + 36] = np.array([np.nan], dtype="<f4").tobytes()  # record 1
    raw[header + 3 * record + 40 : header + 3 * record + 44] = b"\xff\xff\x7f\x7f"  # record 3: ~3.4e38
    seg.write_bytes(bytes(raw))
    with caplog.at_level("WARNING"):
        fresh = VectorLog(tmp_path / "shard")
        assert len(fresh) == 2 and keys[1] not in fresh and keys[3] not in fresh
    assert "2 damaged record(s)" in caplog.text and seg.name in caplog.text
    np.testing.assert_array_equal(fresh.get(keys[0]), vecs[0])


def test_a_dropped_record_is_encoded_again(tmp_path):
    ds = FakeDataset()
    vlm = FakeVLM(ds.info.classnames)
    samples = ds.split("train")[:3]
    first = FeatureStore(vlm, cache_root=tmp_path).features(ds, samples)
    seg = next(tmp_path.rglob("seg-*.bin"))
    raw = bytearray(seg.read_bytes())
    raw[-4:] = np.array([np.nan], dtype="<f4").tobytes()  # the last record's last value
    seg.write_bytes(bytes(raw))
    store = FeatureStore(vlm, cache_root=tmp_path)
    again = store.features(ds, samples)
    assert np.isfinite(again).all() and store.stats["computed"] == 1
    np.testing.assert_allclose(again, first, rtol=1e-6)


def test_non_finite_features_from_the_vlm_are_refused(tmp_path):
    ds = FakeDataset()
    vlm = FakeVLM(ds.info.classnames)
    vlm.encode_images = lambda images: np.full((len(images), 8), np.nan, dtype=np.float32)
    with pytest.raises(BackendError, match="not finite"):
        FeatureStore(vlm, cache_root=tmp_path).features(ds, ds.split("train")[:2])
    assert not list(tmp_path.rglob("seg-*.bin")) or all(p.stat().st_size <= 16 for p in tmp_path.rglob("seg-*.bin"))
