"""Image features of a dataset computed once, before its cells run in parallel.

Run sequentially, the first cell of a dataset fills the shared feature store and the others
read it. Run in parallel, the first cells of a dataset would all encode the same test images
at once, so the parallel executors first run one task per (dataset, VLM) that encodes every
image any of its cells needs: the few-shot images of each (shots, seed, class split) and the
test split."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrefetchTask:
    dataset: str
    data_root: str | None
    vlm: str
    splits: tuple[tuple[int, int, str], ...]  # (shots, seed, class_split)
    label: str


def prefetch_features(task: PrefetchTask) -> dict[str, Any]:
    """Encode what the cells of one dataset will need; never raises (a dataset that cannot be
    read fails again, with its own error line, in each of its cells)."""
    from ipo_vlm.benchmark.cells import CountingVLM
    from ipo_vlm.errors import one_line
    from ipo_vlm.data import load_dataset, make_split
    from ipo_vlm.engine.features import FeatureStore
    from ipo_vlm.vlm import create_vlm

    started = time.perf_counter()
    out: dict[str, Any] = {"dataset": task.label, "vlm": task.vlm, "images_encoded": 0, "error": None}
    try:
        dataset = load_dataset(task.dataset, task.data_root)
        vlm = CountingVLM(create_vlm(task.vlm))
        store = FeatureStore(vlm)
        samples: dict[str, Any] = {}
        for shots, seed, class_split in task.splits:
            split = make_split(dataset, shots, seed, class_split=class_split)
            for s in (*split.train, *split.val, *split.test_base, *split.test_novel):
                samples.setdefault(f"{s.ref}", s)
        store.features(dataset, list(samples.values()))
        out["images_encoded"] = vlm.images
        out["images_needed"] = len(samples)
    except Exception as e:
        out["error"] = one_line(e)
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out
