"""Published results shipped with the package (``assets/references.yaml``), each with its
source, and the rule for showing them: only beside rows of the same dataset, shots and
backbone."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

COOP_11 = ("imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
           "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101")


@dataclass(frozen=True)
class ReferenceRow:
    """Base / novel / H as fractions, like our own numbers."""

    method: str
    shots: int
    dataset: str  # a CoOp dataset name, or "average" (of the 11)
    base: float
    novel: float
    hm: float
    source: str
    note: str = ""


@lru_cache(maxsize=1)
def _load() -> tuple[str, tuple[ReferenceRow, ...]]:
    import yaml

    raw = yaml.safe_load((resources.files("ipo_vlm") / "assets" / "references.yaml").read_text(encoding="utf-8"))
    rows: list[ReferenceRow] = []
    for e in raw["entries"]:
        def row(dataset: str, v: list[float], method: str = e["method"], note: str = e.get("note", "")) -> ReferenceRow:
            return ReferenceRow(method, int(e["shots"]), dataset, v[0] / 100, v[1] / 100, v[2] / 100, e["source"], note)

        per_dataset = e.get("rows") or {}
        rows.extend(row(d, v, note="") for d, v in per_dataset.items())
        if "average" in e:
            rows.append(row("average", e["average"]))
        if len(per_dataset) == len(COOP_11):
            # the mean of the table's own rows (H of the mean base and novel, the convention
            # of the base-to-novel papers), beside the average the source reports
            b, n = (sum(v[i] for v in per_dataset.values()) / len(per_dataset) for i in (0, 1))
            mean = [round(b, 2), round(n, 2), round(2 * b * n / (b + n), 2)]
            if any(abs(x - y) > 0.05 for x, y in zip(mean, e.get("average", [0, 0, 0]))):
                rows.append(row("average", mean, f"{e['method']}, mean of its per-dataset rows",
                                "computed here from the per-dataset rows of the same table"))
    return str(raw["backbone"]), tuple(rows)


def backbone() -> str:
    return _load()[0]


def all_references() -> tuple[ReferenceRow, ...]:
    return _load()[1]


def references_for(dataset: str, shots: int, vlm: str) -> list[ReferenceRow]:
    """Rows to show beside ours: same dataset (``"average"`` for the 11-dataset mean), same
    shots, and our VLM is the backbone they were measured with."""
    if vlm != backbone():
        return []
    return [r for r in all_references() if r.dataset == dataset and r.shots == shots]


def as_dict(row: ReferenceRow) -> dict[str, Any]:
    return dict(row.__dict__)
