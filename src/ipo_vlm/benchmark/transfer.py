"""Transfer: a template found on the source dataset, evaluated on other datasets.

CoCoOp's cross-dataset protocol (and the domain-generalization one with ImageNet-V2 / -Sketch
/ -A / -R): the template is applied unchanged to each target's full test split, classified
among all of the target's classes. One line per (source cell, target) in ``transfer.jsonl``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipo_vlm.benchmark.cells import latest_lines
from ipo_vlm.io.jsonio import append_jsonl
from ipo_vlm.io.hashing import sha256_json

TRANSFER_FILE = "transfer.jsonl"


@dataclass(frozen=True)
class TransferTask:
    key: str
    source: dict[str, Any]  # the source cell's record
    target: dict[str, Any]  # {name, data_root, label}


def transfer_tasks(grid: Any, records: dict[str, dict[str, Any]], benchdir: Path) -> list[TransferTask]:
    """Tasks for every finished source cell and target not evaluated yet."""
    if grid.transfer is None:
        return []
    done = {r["key"] for r in read_transfer(benchdir).values() if r.get("status") == "done"}
    ids = {c.cell_id for c in grid.cells() if c.dataset == grid.transfer.source}
    tasks = []
    for rec in records.values():
        if rec["cell_id"] not in ids or rec.get("status") != "done" or not rec.get("best_template"):
            continue
        for target in grid.transfer.targets:
            t = target.to_dict()
            key = sha256_json({"cell": rec["cell_id"], "template": rec["best_template"], "vlm": rec["vlm"], "target": t})[:16]
            if key not in done:
                tasks.append(TransferTask(key, rec, t))
    return tasks


def run_transfer(task: TransferTask) -> dict[str, Any]:
    """Accuracy of the source cell's template on the target's test split; never raises."""
    from ipo_vlm.benchmark.cells import CountingVLM
    from ipo_vlm.errors import one_line

    started = time.perf_counter()
    src, tgt = task.source, task.target
    out: dict[str, Any] = {
        "key": task.key, "source_cell_id": src["cell_id"], "source": src["dataset"], "name": src["name"],
        "method": src["method"], "shots": src["shots"], "seed": src["seed"], "vlm": src["vlm"],
        "template": src["best_template"], "target": tgt["label"], "target_dataset": tgt["name"],
        "status": "done", "error": None, "acc": None, "images_encoded": 0,
    }
    try:
        import numpy as np

        from ipo_vlm.data import load_dataset
        from ipo_vlm.engine.features import FeatureStore
        from ipo_vlm.engine.scoring import Scorer
        from ipo_vlm.vlm import create_vlm

        dataset = load_dataset(tgt["name"], tgt["data_root"])
        vlm = CountingVLM(create_vlm(src["vlm"]))
        test = dataset.split("test")
        feats = FeatureStore(vlm).features(dataset, test)
        score = Scorer(vlm).score([src["best_template"]], list(dataset.info.classnames), feats,
                                  np.asarray([s.label for s in test]))[0]
        out["acc"] = float(score.accuracy)
        out["n_test"] = len(test)
        out["images_encoded"] = vlm.images
    except Exception as e:
        out["status"], out["error"] = "failed", one_line(e)
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def read_transfer(benchdir: Path) -> dict[str, dict[str, Any]]:
    """The last ``transfer.jsonl`` line of each evaluation key."""
    return latest_lines(benchdir / TRANSFER_FILE, "key")


def append_transfer(benchdir: Path, record: dict[str, Any]) -> None:
    append_jsonl(benchdir / TRANSFER_FILE, record)
