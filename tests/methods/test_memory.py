"""The episodic memory keeps the true top-k, deterministically, without duplicates."""

from __future__ import annotations

import math
import random

import pytest

from ipo_vlm.methods.memory import Memory
from ipo_vlm.scored import ScoredTemplate
from ipo_vlm.prompting import normalize_key


def _reference_top_k(entries: list[ScoredTemplate], k: int) -> list[ScoredTemplate]:
    """Sorted reference: best accuracy, then lowest loss, then earliest step, then first offered;
    among equal keys only the best-ranked one counts."""
    order = sorted(range(len(entries)), key=lambda i: (-entries[i].accuracy, entries[i].loss, entries[i].step, i))
    kept: list[ScoredTemplate] = []
    keys: set[str] = set()
    for i in order:
        key = normalize_key(entries[i].template)
        if key not in keys:
            keys.add(key)
            kept.append(entries[i])
    return kept[:k]


@pytest.mark.parametrize("seed", range(25))
def test_random_insertions_keep_the_true_top_k(seed: int) -> None:
    rng = random.Random(seed)
    k = rng.randint(1, 12)
    words = ["photo", "Photo", "sketch", "painting", "render"]
    entries = [
        ScoredTemplate(
            template=f"a {rng.choice(words)} of a {{}} #{rng.randint(0, 30)}",
            # coarse values so that ties in accuracy, loss and step really happen
            accuracy=rng.randint(0, 10) / 10,
            loss=rng.randint(0, 5) / 4,
            step=rng.randint(0, 6),
            source=rng.choice(["seed", "llm"]),
        )
        # always more entries than the memory holds, so eviction is exercised on every seed
        for _ in range(rng.randint(3 * k, 80))
    ]
    memory = Memory(size=k)
    for entry in entries:
        memory.add(entry)
    assert memory.entries == _reference_top_k(entries, k)
    assert len(memory) == min(k, len({normalize_key(e.template) for e in entries}))
    assert len({normalize_key(e.template) for e in memory}) == len(memory)


def test_add_reports_whether_the_entry_entered() -> None:
    memory = Memory(size=2)
    assert memory.add(ScoredTemplate("a photo of a {}.", 0.5, 1.0, 0, "seed"))
    assert memory.add(ScoredTemplate("a sketch of a {}.", 0.7, 1.0, 1))
    assert not memory.add(ScoredTemplate("a bad {}.", 0.4, 0.1, 2))  # worse than both: stays out
    assert memory.add(ScoredTemplate("a great {}.", 0.9, 0.9, 2))  # evicts the worst
    assert [e.template for e in memory] == ["a great {}.", "a sketch of a {}."]
    assert not memory.add(ScoredTemplate("A  SKETCH of a {}.", 0.6, 0.5, 3))  # same key, ranks lower
    assert memory.add(ScoredTemplate("A  SKETCH of a {}.", 0.8, 0.5, 3))  # same key, ranks higher: replaces
    assert [e.template for e in memory] == ["a great {}.", "A  SKETCH of a {}."]


def test_ties_lower_loss_then_earlier_step_then_first_offered() -> None:
    memory = Memory(size=10)
    memory.add(ScoredTemplate("late {}", 0.5, 0.3, step=5))
    memory.add(ScoredTemplate("high loss {}", 0.5, 0.9, step=0))
    memory.add(ScoredTemplate("early {}", 0.5, 0.3, step=1))
    memory.add(ScoredTemplate("early twin {}", 0.5, 0.3, step=1))
    assert [e.template for e in memory] == ["early {}", "early twin {}", "late {}", "high loss {}"]
    assert memory.best() == ScoredTemplate("early {}", 0.5, 0.3, step=1)


def test_for_prompt_is_ascending_with_best_last() -> None:
    memory = Memory.from_entries(
        [ScoredTemplate("a {}", 0.8, 0.2), ScoredTemplate("b {}", 0.9, 0.5), ScoredTemplate("c {}", 0.8, 0.7)], size=5
    )
    assert [(e.template, e.accuracy, e.loss) for e in memory.for_prompt()] == [("c {}", 0.8, 0.7), ("a {}", 0.8, 0.2), ("b {}", 0.9, 0.5)]


def test_nan_scores_rank_last() -> None:
    memory = Memory.from_entries([ScoredTemplate("nan {}", math.nan, 0.1), ScoredTemplate("ok {}", 0.0, 9.0)], size=1)
    assert [e.template for e in memory] == ["ok {}"]


def test_empty_memory_and_containment() -> None:
    memory = Memory(size=3)
    assert memory.best() is None and len(memory) == 0 and memory.for_prompt() == []
    memory.add(ScoredTemplate("a photo of a {}.", 0.5, 1.0))
    assert "A photo of a <CLASS>." in memory and "a photo of a {}" not in memory
    assert memory.keys() == {"a photo of a {}."}


def test_entry_round_trips_through_a_dict() -> None:
    entry = ScoredTemplate("a photo of a {}.", 0.625, 1.25, 3, "llm")
    assert ScoredTemplate.from_record(entry.to_record()) == entry


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Memory(size=0)
