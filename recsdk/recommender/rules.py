"""Business rules: which items may appear in a list, and filling a list to exactly ``k``.

:class:`Rules` says what a list may hold: never a blocked item (one the shopper bought or
saw, one excluded explicitly, the query item itself), only eligible items (available, in
the catalog), optionally only some items or one category, at most so many per category.
A :class:`Picker` takes candidates from sources in turn (the model's scores, then
trending, then popular items) until the list holds ``k``. The category cap is a
preference: when it leaves the list short, capped items complete it, evenly.
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["NO_SUCH_CATEGORY", "Pick", "Picker", "Rules", "member"]

NO_SUCH_CATEGORY: Final = -2
"""The category code of a filter naming a category no item has: nothing matches."""

_CHUNK: Final = 256
IntArray = npt.NDArray[np.int32]

Pick = tuple[int, float, str, int]
"""``(item index, score, reason type, index of the item the reason names or -1)``."""


@attrs.frozen(eq=False)
class Rules:
    """What one list may hold.

    Attributes
    ----------
    k:
        Items wanted.
    blocked:
        Items never to return, sorted.
    include:
        When given, the only items that may be returned, sorted.
    category:
        When given, the only category code whose items may be returned.
    max_per_category:
        At most this many items of one category while others can fill the list.
    """

    k: int
    blocked: IntArray = attrs.field(factory=lambda: np.empty(0, dtype=np.int32))
    include: IntArray | None = None
    category: int | None = None
    max_per_category: int | None = None


class Picker:
    """Builds one list under :class:`Rules` from candidates offered in order of preference."""

    __slots__ = (
        "_categories",
        "_eligible",
        "_per_category",
        "_taken",
        "deferred",
        "picks",
        "rules",
    )

    def __init__(self, rules: Rules, eligible: npt.NDArray[np.bool_], categories: IntArray) -> None:
        self.rules = rules
        self._eligible = eligible
        self._categories = categories
        self.picks: list[Pick] = []
        self.deferred: list[Pick] = []
        self._taken: set[int] = set()
        self._per_category: dict[int, int] = {}

    @property
    def full(self) -> bool:
        return len(self.picks) >= self.rules.k

    def allowed(self, candidates: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        """Which candidates the rules let into the list (ignoring the category cap)."""
        rules = self.rules
        inside = candidates < len(self._eligible)
        safe = np.where(inside, candidates, 0)
        mask = inside & self._eligible[safe]
        if rules.category is not None:
            mask &= self._categories[safe] == rules.category
        if rules.include is not None:
            mask &= member(candidates, rules.include)
        if len(rules.blocked):
            mask &= ~member(candidates, rules.blocked)
        return mask

    def offer(
        self,
        candidates: npt.NDArray[np.integer],
        scores: npt.NDArray[np.floating] | None,
        reason: str,
        about: int | npt.NDArray[np.integer] = -1,
    ) -> bool:
        """Take allowed candidates, in order, until the list is full; return whether it is.

        ``reason`` and ``about`` (one for all, or one per candidate) go with each item
        taken (see :data:`Pick`).
        """
        for start in range(0, len(candidates), _CHUNK):
            if self.full:
                break
            chunk = candidates[start : start + _CHUNK]
            positions = np.flatnonzero(self.allowed(chunk))
            items = chunk[positions].tolist()
            values = (
                scores[start : start + _CHUNK][positions].tolist()
                if scores is not None
                else [0.0] * len(items)
            )
            abouts = (
                [about] * len(items)
                if isinstance(about, int)
                else about[start : start + _CHUNK][positions].tolist()
            )
            for item, score, source in zip(items, values, abouts, strict=True):
                if self._take((item, float(score), reason, source)):
                    break
        return self.full

    def _take(self, pick: Pick) -> bool:
        """Take one candidate (or defer it, over the cap); return whether the list is full."""
        item = pick[0]
        if item in self._taken:
            return False
        self._taken.add(item)
        cap = self.rules.max_per_category
        category = int(self._categories[item])
        if cap is not None and category >= 0:
            count = self._per_category.get(category, 0)
            if count >= cap:
                self.deferred.append(pick)
                return False
            self._per_category[category] = count + 1
        self.picks.append(pick)
        return len(self.picks) >= self.rules.k

    def finish(self) -> list[Pick]:
        """The list: the picks, completed with capped items when it is short.

        The cap gives way one item per category at a time, so the list stays as even
        across categories as the allowed items let it be.
        """
        level = self.rules.max_per_category or 0
        deferred = self.deferred
        while len(self.picks) < self.rules.k and deferred:
            level += 1
            waiting: list[Pick] = []
            for pick in deferred:
                category = int(self._categories[pick[0]])
                count = self._per_category.get(category, 0)
                if len(self.picks) < self.rules.k and count < level:
                    self.picks.append(pick)
                    self._per_category[category] = count + 1
                else:
                    waiting.append(pick)
            deferred = waiting
        return self.picks[: self.rules.k]


def member(values: npt.NDArray[np.integer], sorted_set: IntArray) -> npt.NDArray[np.bool_]:
    """``np.isin`` for a sorted ``sorted_set``, faster on small inputs."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    where = np.searchsorted(sorted_set, values)
    where[where >= len(sorted_set)] = 0
    found: npt.NDArray[np.bool_] = sorted_set[where] == values
    return found
