"""The one ordering of scored templates (``scored.rank_key``): the memory, the meta-prompt, the
run's selection and the report's memory table order the same templates the same way, NaN last."""

from __future__ import annotations

import math

from ipo_vlm.methods.memory import Memory
from ipo_vlm.prompting.render import sort_for_prompt
from ipo_vlm.report.run import ranked as report_ranked
from ipo_vlm.runs.select import rank
from ipo_vlm.scored import ScoredTemplate, best_first, worst_first

NAN = math.nan
ITEMS = [
    ScoredTemplate("a {}", 0.5, 1.0), ScoredTemplate("b {}", 0.7, 0.9), ScoredTemplate("c {}", NAN, 0.1),
    ScoredTemplate("d {}", 0.7, 0.8), ScoredTemplate("e {}", 0.7, NAN), ScoredTemplate("f {}", 0.5, 1.0),
    ScoredTemplate("g {}", 0.2, 2.0),
]
EXPECTED = ["d {}", "b {}", "e {}", "a {}", "f {}", "g {}", "c {}"]  # NaN accuracy last, NaN loss last among equals


def test_best_first_and_worst_first_are_one_order_reversed_with_nan_last():
    assert [s.template for s in best_first(ITEMS)] == EXPECTED
    # stable both ways: the full tie (a, f) keeps the given order
    assert [s.template for s in worst_first(ITEMS)] == ["c {}", "g {}", "a {}", "f {}", "e {}", "b {}", "d {}"]


def test_memory_meta_prompt_selection_and_report_agree():
    memory = Memory.from_entries(ITEMS, size=len(ITEMS))
    assert [s.template for s in memory.entries] == EXPECTED
    assert sort_for_prompt(ITEMS) == worst_first(ITEMS)
    # the memory shows itself worst first in the same order (full ties: the later entry first)
    assert [s.rank_key() for s in memory.for_prompt()] == [s.rank_key() for s in sort_for_prompt(ITEMS)]
    assert [s.template for s in rank(ITEMS, "train")] == EXPECTED
    records = [s.to_record() for s in ITEMS]
    assert [r["template"] for r in report_ranked(records, 0, k=len(ITEMS))] == EXPECTED
