"""Image features computed once per (model, preprocessing, image content) and kept on disk.

Storage: one directory per (``model_id``, ``preprocess_id``) shard under
``cache_dir("features")``, holding append-only segment files of fixed-size records
(32-byte key, then ``d`` float32 values). Each writer appends to its own new segment, so
concurrent runs never write the same file; a ``kill -9`` can only tear the last record of a
segment, which readers drop. Keys are the images' sha256 content ids, so a 1-shot split reuses
the features of the 16-shot split it is a subset of, across seeds and runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ipo_vlm.errors import BackendError, DataError, IpoError
from ipo_vlm.io.jsonio import atomic_write_json
from ipo_vlm.io.hashing import sha256_json
from ipo_vlm.io.paths import cache_dir

if TYPE_CHECKING:
    from ipo_vlm.data.base import Dataset, Sample
    from ipo_vlm.vlm.base import VisionLanguageModel

log = logging.getLogger(__name__)

_MAGIC = b"IPOVEC1\n"
_HEADER = len(_MAGIC) + 8  # magic, dimension (little-endian uint32), 4 reserved bytes
_KEY = 32

#: called as ``progress(done, total)`` after each batch of newly computed images
Progress = Callable[[int, int], None]


#: no embedding of a CLIP-style model comes near this; a value beyond it is a damaged record
_PLAUSIBLE = 1e4


def plausible(vectors: np.ndarray) -> np.ndarray:
    """Per row: every value a finite number of plausible size (a flipped exponent bit is not)."""
    v = np.asarray(vectors, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v).all(axis=1) & (np.abs(v) < _PLAUSIBLE).all(axis=1)


def key_bytes(key: str) -> bytes:
    """A 32-byte record key: a sha256 hex digest as is, anything else hashed."""
    if len(key) == 64:
        try:
            return bytes.fromhex(key)
        except ValueError:
            pass
    return hashlib.sha256(key.encode("utf-8")).digest()


class VectorLog:
    """Append-only, crash-tolerant store of fixed-dimension float32 vectors by 32-byte key.

    Reading loads every segment of the directory once; writing appends to a segment owned by
    this object only. Records are never modified, so no lock is needed.
    """

    def __init__(self, directory: Path, meta: dict | None = None) -> None:
        self.directory = Path(directory)
        self._meta = meta
        # key -> block << 32 | row: one int per record, so the index of a long run's text cache
        # stays small; the vectors themselves are memory-mapped blocks (page cache, not heap)
        self._index: dict[bytes, int] | None = None
        self._blocks: list[np.ndarray] = []
        self._segment: Path | None = None
        self._dim: int | None = None

    def _load(self) -> dict[bytes, int]:
        if self._index is None:
            self._index = {}
            if self.directory.is_dir():
                for seg in sorted(self.directory.glob("seg-*.bin")):
                    self._read_segment(seg)
        return self._index

    def _add_block(self, body: np.ndarray, keys: Sequence[bytes], rows: Sequence[int] | None = None) -> None:
        """Index ``keys`` as rows ``rows`` (default: all, in order) of ``body`` (records of key,
        then float32 values)."""
        assert self._index is not None
        block = len(self._blocks) << 32
        self._blocks.append(body[:, _KEY:].view("<f4"))
        self._index.update((k, block | i) for i, k in zip(range(len(keys)) if rows is None else rows, keys))

    def _read_segment(self, seg: Path) -> None:
        # memory-mapped: a large text cache costs page cache, not process memory
        try:
            size = seg.stat().st_size
            with open(seg, "rb") as f:
                head = f.read(_HEADER)
        except OSError as e:
            log.warning("skipping unreadable cache segment %s: %s", seg, e.strerror)
            return
        if len(head) < _HEADER or not head.startswith(_MAGIC):
            return  # empty (killed before the header was written) or foreign file
        dim = int.from_bytes(head[len(_MAGIC) : len(_MAGIC) + 4], "little")
        rec = _KEY + 4 * dim
        n = (size - _HEADER) // rec  # a torn final record is ignored
        if dim == 0 or n <= 0:
            return
        body = np.memmap(seg, dtype=np.uint8, mode="r", offset=_HEADER, shape=(n, rec))
        vecs = body[:, _KEY:].view("<f4")
        rows: list[tuple[int, bytes]] = []
        for start in range(0, n, 4096):  # checked in chunks: a large cache stays out of memory
            ok = plausible(vecs[start : start + 4096])
            rows += [(i, body[i, :_KEY].tobytes()) for i in range(start, min(start + 4096, n)) if ok[i - start]]
        if len(rows) < n:
            log.warning("cache segment %s: %d damaged record(s) (not finite numbers) dropped; they are computed again", seg, n - len(rows))
        self._add_block(body, [k for _, k in rows], [i for i, _ in rows])

    def get(self, key: bytes) -> np.ndarray | None:
        at = self._load().get(key)
        return None if at is None else self._blocks[at >> 32][at & 0xFFFFFFFF]

    def __contains__(self, key: bytes) -> bool:
        return key in self._load()

    def __len__(self) -> int:
        return len(self._load())

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Append records and flush them to the OS (survives the process being killed)."""
        self._load()
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        if len(keys) != len(vectors):
            raise ValueError("keys and vectors differ in length")
        if not len(keys):
            return
        dim = vectors.shape[1]
        if self._segment is None or self._dim != dim:
            self._open_segment(dim)
        payload = b"".join(k + v.tobytes() for k, v in zip(keys, vectors))
        with open(self._segment, "ab") as f:
            start = f.tell()
            f.write(payload)
            f.flush()
        # read back through a map of what was just written, like the segments loaded at start
        self._add_block(np.memmap(self._segment, dtype=np.uint8, mode="r", offset=start, shape=(len(keys), _KEY + 4 * dim)), keys)

    def _open_segment(self, dim: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._meta is not None and not (self.directory / "meta.json").exists():
            atomic_write_json(self.directory / "meta.json", self._meta)
        self._segment = self.directory / f"seg-{os.getpid()}-{uuid.uuid4().hex[:12]}.bin"
        self._dim = dim
        with open(self._segment, "wb") as f:
            f.write(_MAGIC + int(dim).to_bytes(4, "little") + bytes(4))
            f.flush()


class FeatureStore:
    """Image features of one VLM, cached on disk by image content.

    ``features(dataset, samples)`` returns an (n, d) float32 array in the order of ``samples``,
    computing only the images whose content id is not stored yet.
    """

    def __init__(self, vlm: "VisionLanguageModel", cache_root: str | Path | None = None) -> None:
        self.vlm = vlm
        root = Path(cache_root) if cache_root is not None else cache_dir("features")
        meta = {"model_id": vlm.model_id, "preprocess_id": vlm.preprocess_id}
        self.shard_dir = root / sha256_json(meta)[:24]
        self._log = VectorLog(self.shard_dir, meta=meta)
        self.stats: dict[str, int] = {"hits": 0, "computed": 0}

    def has(self, key: bytes) -> bool:
        """Whether the image of this content key (see :func:`key_bytes`) is stored."""
        return key in self._log

    def has_any(self) -> bool:
        """Whether anything is stored for this VLM, without reading the store."""
        return self.shard_dir.is_dir() and any(self.shard_dir.glob("seg-*.bin"))

    def features(
        self,
        dataset: "Dataset",
        samples: Sequence["Sample"],
        batch_size: int = 32,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """(len(samples), d) L2-normalised float32 features; raises DataError on a bad image."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        keys = [key_bytes(_content_id(dataset, s)) for s in samples]
        missing: dict[bytes, "Sample"] = {}
        for k, s in zip(keys, samples):
            if k not in self._log and k not in missing:
                missing[k] = s
        self.stats["hits"] += len(samples) - sum(1 for k in keys if k in missing)
        self._compute(dataset, missing, batch_size, progress)
        if not samples:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._log.get(k) for k in keys]).astype(np.float32, copy=False)

    def _compute(
        self, dataset: "Dataset", missing: dict[bytes, "Sample"], batch_size: int, progress: Progress | None
    ) -> None:
        todo = list(missing.items())
        if todo:
            log.info("encoding %d images with %s", len(todo), self.vlm.model_id)
            if progress is not None:
                progress(0, len(todo))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            images = [_open(dataset, s) for _, s in chunk]
            feats = np.asarray(self.vlm.encode_images(images), dtype=np.float32)
            if feats.shape[0] != len(chunk):
                raise RuntimeError(f"VLM returned {feats.shape[0]} features for {len(chunk)} images")
            bad = [str(getattr(s, "ref", "?")) for (_, s), ok in zip(chunk, plausible(feats)) if not ok]
            if bad:  # never cached, never scored
                raise BackendError(f"{self.vlm.model_id} returned features that are not finite numbers for {len(bad)} "
                                   f"image(s), e.g. {bad[0]}")
            self._log.put_many([k for k, _ in chunk], feats)
            self.stats["computed"] += len(chunk)
            if progress is not None:
                progress(min(start + batch_size, len(todo)), len(todo))


def _content_id(dataset: "Dataset", sample: "Sample") -> str:
    try:
        return dataset.content_id(sample)
    except IpoError:
        raise
    except OSError as e:
        raise DataError(f"cannot read image {sample.ref}: {e.strerror or e}") from None


def _open(dataset: "Dataset", sample: "Sample"):
    """Open one image; any failure becomes a DataError that names the image."""
    try:
        image = dataset.open_image(sample)
        image.load()
        return image
    except IpoError:
        raise
    except Exception as e:  # PIL raises many types for corrupt files; all mean "unreadable"
        raise DataError(f"cannot read image {sample.ref}: {type(e).__name__}: {e}") from None
