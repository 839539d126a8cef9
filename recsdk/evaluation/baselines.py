"""The popularity baseline every recommender should beat."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.errors import checked_int

__all__ = ["Popularity"]


@attrs.define(eq=False)
class Popularity:
    """Recommends the items the most distinct users interacted with, minus the user's own."""

    _order: npt.NDArray[np.int32] = attrs.field(init=False, factory=lambda: np.empty(0, np.int32))
    _seen: dict[int, set[int]] = attrs.field(init=False, factory=dict)

    def fit(self, events: Any) -> Popularity:
        """Count distinct users per item in interactions-like arrays."""
        users = np.asarray(events.users, dtype=np.int64)
        items = np.asarray(events.items, dtype=np.int64)
        pairs = np.unique(users << 32 | items)
        counts = np.bincount(pairs & 0xFFFFFFFF, minlength=int(events.n_items))
        self._order = np.argsort(-counts, kind="stable").astype(np.int32)
        self._seen = {}
        for u, i in zip((pairs >> 32).tolist(), (pairs & 0xFFFFFFFF).tolist(), strict=True):
            self._seen.setdefault(u, set()).add(i)
        return self

    def recommend(
        self, user: int, k: int = 10, *, exclude_seen: bool = True
    ) -> npt.NDArray[np.int32]:
        """The ``k`` most popular items the user has not interacted with."""
        k = checked_int("k", k, minimum=0)
        seen = self._seen.get(int(user), set()) if exclude_seen else set()
        out = [int(i) for i in self._order[: k + len(seen)] if int(i) not in seen]
        return np.asarray(out[:k], dtype=np.int32)
