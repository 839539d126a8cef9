"""Trending (time-decayed popularity) and popularity, overall and per category.

An event adds its type's weight (a view 1, a purchase 5...; never below 0) to its item's
trending score, halved every ``half_life_days`` of age. Scores are kept relative to a
reference time, the newest event seen, so that new events are added exactly by decaying the
old scores to the new reference first. :class:`Rankings` turns scores into the item orders
the recommender fills lists from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine.matrix import event_weights
from recsdk.recommender.items import ItemTable

__all__ = ["Rankings", "Trending"]

_DAY = 86400.0
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


@attrs.frozen(eq=False)
class Trending:
    """Decayed event weight per item, relative to ``reference`` (epoch seconds)."""

    scores: FloatArray
    reference: float
    half_life_days: float

    @classmethod
    def empty(cls, n_items: int, half_life_days: float) -> Trending:
        return cls(np.zeros(n_items, dtype=np.float64), 0.0, half_life_days)

    def advanced(self, events: Any, n_items: int, type_weights: Mapping[int, float]) -> Trending:
        """These scores plus ``events`` (arrays like the store's interactions)."""
        stamps = np.asarray(events.timestamps, dtype=np.float64)
        reference = max(self.reference, float(stamps.max(initial=self.reference)))
        scores = np.zeros(max(n_items, len(self.scores)), dtype=np.float64)
        scores[: len(self.scores)] = self.scores
        if self.reference:
            scores *= np.exp2(-(reference - self.reference) / (self.half_life_days * _DAY))
        if len(stamps):
            weights = event_weights(len(stamps), events.types, events.values, type_weights)
            weights = np.maximum(weights, 0.0)
            weights *= np.exp2(-(reference - stamps) / (self.half_life_days * _DAY))
            scores += np.bincount(
                np.asarray(events.items, dtype=np.int64), weights=weights, minlength=len(scores)
            )[: len(scores)]
        return Trending(scores, reference, self.half_life_days)


@attrs.frozen(eq=False)
class Rankings:
    """Item orders to fill lists from, best first, ties by index.

    Attributes
    ----------
    trending:
        Items with a positive trending score.
    trending_by_category:
        The same, per category code.
    popular:
        Every item index, by decreasing popularity (distinct users): items no one touched
        yet come last, which lets any list be completed.
    popularity:
        Distinct users per item.
    """

    trending: IntArray
    trending_by_category: dict[int, IntArray]
    popular: IntArray
    popularity: FloatArray

    @classmethod
    def build(cls, trending: Trending, popularity: FloatArray, items: ItemTable) -> Rankings:
        n = len(items)
        scores = _fitted(trending.scores, n)
        counts = _fitted(popularity, n)
        index = np.arange(n, dtype=np.int64)
        hot = np.flatnonzero(scores > 0)
        order = hot[np.lexsort((hot, -scores[hot]))].astype(np.int32)
        categories = items.category[order]
        by_category: dict[int, IntArray] = {}
        grouped = order[np.argsort(categories, kind="stable")]
        codes, starts = np.unique(np.sort(categories), return_index=True)
        bounds = [*starts.tolist(), len(grouped)]
        for position, code in enumerate(codes.tolist()):
            if code >= 0:
                by_category[code] = grouped[bounds[position] : bounds[position + 1]]
        popular = np.lexsort((index, -counts)).astype(np.int32)
        return cls(order, by_category, popular[popular > 0], counts)


def _fitted(values: FloatArray, n: int) -> FloatArray:
    out = np.zeros(n, dtype=np.float64)
    m = min(n, len(values))
    out[:m] = values[:m]
    return out
