"""The episodic memory: the top-k templates scored so far.

Ranked by the training key of :func:`ipo_vlm.scored.rank_key` (accuracy, then lower loss; NaN
last), then step (earlier first), then insertion order, so the ranking is total and deterministic. Two templates with the same
``normalize_key`` never coexist: the better-ranked one stays."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipo_vlm.prompting.placeholders import normalize_key
from ipo_vlm.scored import ScoredTemplate, rank_key


class Memory:
    """Top-``size`` entries, best first. ``add`` is the only way in."""

    def __init__(self, size: int = 20) -> None:
        if size < 1:
            raise ValueError(f"memory size must be >= 1, got {size}")
        self.size = size
        self._ranked: list[tuple[tuple[float, float, int, int], ScoredTemplate]] = []
        self._added = 0  # insertion counter: the last tie-breaker

    @classmethod
    def from_entries(cls, entries: Iterable[ScoredTemplate], size: int = 20) -> "Memory":
        """A memory holding the top ``size`` of ``entries`` (e.g. rebuilt from a run's history)."""
        memory = cls(size)
        for entry in entries:
            memory.add(entry)
        return memory

    def add(self, entry: ScoredTemplate) -> bool:
        """Offer ``entry``; True when it entered the memory (possibly evicting the worst or
        replacing a worse-ranked entry with the same key)."""
        rank = self._rank(entry)
        key = normalize_key(entry.template)
        for i, (other_rank, other) in enumerate(self._ranked):
            if normalize_key(other.template) == key:
                if other_rank <= rank:
                    return False
                del self._ranked[i]
                break
        if len(self._ranked) >= self.size and rank >= self._ranked[-1][0]:
            return False
        self._ranked.append((rank, entry))
        self._ranked.sort(key=lambda pair: pair[0])
        del self._ranked[self.size :]
        return True

    @property
    def entries(self) -> list[ScoredTemplate]:
        """The entries, best first."""
        return [entry for _, entry in self._ranked]

    def best(self) -> ScoredTemplate | None:
        """The best entry, or None while the memory is empty."""
        return self._ranked[0][1] if self._ranked else None

    def for_prompt(self) -> list[ScoredTemplate]:
        """The entries worst first, best last, as the meta-prompt shows them."""
        return list(reversed(self.entries))

    def keys(self) -> set[str]:
        """``normalize_key`` of every template held."""
        return {normalize_key(e.template) for _, e in self._ranked}

    def __contains__(self, template: object) -> bool:
        return isinstance(template, str) and normalize_key(template) in self.keys()

    def __len__(self) -> int:
        return len(self._ranked)

    def __iter__(self) -> Iterator[ScoredTemplate]:
        return iter(self.entries)

    def __repr__(self) -> str:
        return f"Memory(size={self.size}, held={len(self)})"

    def _rank(self, entry: ScoredTemplate) -> tuple[float, float, int, int]:
        # Smaller is better: the scored order negated, then the tie-breakers.
        self._added += 1
        accuracy, loss = rank_key(entry)
        return (-accuracy, -loss, entry.step, self._added)
