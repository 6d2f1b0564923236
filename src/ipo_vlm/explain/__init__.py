"""``ipo explain``: which words of a template carry its accuracy, by ablation on the run's split."""

from ipo_vlm.explain.ablate import Ablation, ablations, split_words
from ipo_vlm.explain.explain import EXPLAIN_FORMAT, deltas, explain_run, read_explain

__all__ = ["EXPLAIN_FORMAT", "Ablation", "ablations", "deltas", "explain_run", "read_explain", "split_words"]
