"""A shopper's live history, read from the store at request time, and what it says.

:func:`read_history` turns the store's rows of one shopper's latest item events into a
:class:`History`: per item an affinity (event type weights, halved every ``half_life_days``
back from the shopper's newest event, like the engine's), the items seen and bought, the
strongest action per item (for reasons), and the shopper's category preferences.
:func:`user_profile` adds recency, frequency and monetary value.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import Weighting
from recsdk.events import TypeCode
from recsdk.recommender.items import ItemTable
from recsdk.recommender.results import UserProfile
from recsdk.store.results import ItemEventRow

__all__ = ["EMPTY_HISTORY", "History", "WeightTable", "read_history", "user_profile"]

_DAY = 86400.0
_PREFERRED: Final = 3
_SMALL: Final = 64  # histories up to this many rows are read in plain Python
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]

# Which action names an item in a reason, strongest first.
_ACTION_RANK: Final = {
    TypeCode.purchase: 6,
    TypeCode.add_to_cart: 5,
    TypeCode.wishlist: 4,
    TypeCode.rate: 3,
    TypeCode.click: 2,
    TypeCode.view: 1,
}
ACTIONS: Final = {
    6: "bought",
    5: "added_to_cart",
    4: "wishlisted",
    3: "rated",
    2: "viewed",
    1: "viewed",
    0: "viewed",
}


@attrs.frozen(eq=False)
class WeightTable:
    """A model's :class:`~recsdk.engine.Weighting` as lookup arrays, made once per model."""

    weights: FloatArray
    ranks: npt.NDArray[np.int8]
    half_life_days: float | None
    cap: float | None
    weight_list: list[float] = attrs.field(init=False)
    rank_list: list[int] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "weight_list", self.weights.tolist())
        object.__setattr__(self, "rank_list", self.ranks.tolist())

    @classmethod
    def of(cls, weighting: Weighting) -> WeightTable:
        weights = np.zeros(256, dtype=np.float64)
        for code, weight in weighting.type_weights.items():
            weights[int(code) % 256] = weight
        ranks = np.zeros(256, dtype=np.int8)
        for code, rank in _ACTION_RANK.items():
            ranks[int(code)] = rank
        return cls(weights, ranks, weighting.half_life_days, weighting.cap)


@attrs.frozen(eq=False)
class History:
    """One shopper's recent items, ready for scoring and filtering.

    Attributes
    ----------
    items, weights:
        Items with a positive affinity and that affinity, strongest first.
    seen:
        Every item of the history, sorted.
    bought:
        Items purchased, sorted.
    actions:
        The strongest action per item of ``items`` (a key of ``ACTIONS``).
    preferred:
        Category code -> share of the shopper's affinity, strongest first.
    rows:
        The store's rows, newest first (for :func:`user_profile`).
    """

    items: IntArray
    weights: FloatArray
    seen: IntArray
    bought: IntArray
    actions: npt.NDArray[np.int8]
    preferred: dict[int, float]
    rows: Sequence[ItemEventRow] = ()

    def __len__(self) -> int:
        return len(self.rows)


_EMPTY_ITEMS: Final = np.empty(0, dtype=np.int32)

EMPTY_HISTORY: Final = History(
    items=np.empty(0, dtype=np.int32),
    weights=np.empty(0, dtype=np.float64),
    seen=np.empty(0, dtype=np.int32),
    bought=np.empty(0, dtype=np.int32),
    actions=np.empty(0, dtype=np.int8),
    preferred={},
)


def read_history(rows: Sequence[ItemEventRow], table: WeightTable, items: ItemTable) -> History:
    """Affinities and sets of one shopper from their item event rows (newest first)."""
    if not rows:
        return EMPTY_HISTORY
    if len(rows) <= _SMALL:
        return _small_history(rows, table, items)
    columns = list(zip(*rows, strict=True))
    item = np.array(columns[0], dtype=np.int64)
    code = np.array(columns[1], dtype=np.int64) % 256
    weight = table.weights[code]
    if TypeCode.rate in columns[1]:
        rated = np.flatnonzero(code == TypeCode.rate)
        weight[rated] *= np.array([rows[i][3] or 0.0 for i in rated.tolist()])
    if table.half_life_days is not None:
        stamps = np.array(columns[2], dtype=np.float64)
        weight *= np.exp2((stamps - stamps.max()) / (1000.0 * _DAY * table.half_life_days))
    order = np.argsort(item, kind="stable")
    item_sorted = item[order]
    boundary = np.empty(len(item), dtype=bool)
    boundary[0] = True
    np.not_equal(item_sorted[1:], item_sorted[:-1], out=boundary[1:])
    starts = np.flatnonzero(boundary)
    seen = item_sorted[starts]
    affinity = np.add.reduceat(weight[order], starts)
    if table.cap is not None:
        affinity = np.minimum(affinity, table.cap)
    keep = np.flatnonzero(affinity > 0)
    keep = keep[np.argsort(-affinity[keep], kind="stable")]
    kept = seen[keep]
    bought = _EMPTY_ITEMS
    if TypeCode.purchase in columns[1]:
        bought = np.unique(item[code == TypeCode.purchase]).astype(np.int32)
    return History(
        items=kept.astype(np.int32),
        weights=affinity[keep],
        seen=seen.astype(np.int32),
        bought=bought,
        actions=np.maximum.reduceat(table.ranks[code][order], starts)[keep],
        preferred=_preferences(kept, affinity[keep], items),
        rows=rows,
    )


def _small_history(rows: Sequence[ItemEventRow], table: WeightTable, items: ItemTable) -> History:
    """:func:`read_history` in plain Python, faster than numpy for a few dozen rows.

    It adds the same numbers in the same order, so both give the same history.
    """
    weights, ranks = table.weight_list, table.rank_list
    decay = table.half_life_days is not None
    if decay:
        newest = max(row[2] for row in rows)
        scale = 1000.0 * _DAY * (table.half_life_days or 1.0)
    by_item: dict[int, float] = {}
    action: dict[int, int] = {}
    bought: set[int] = set()
    rate, purchase = int(TypeCode.rate), int(TypeCode.purchase)
    # Rows stay newest first: each item's weights add up in the same order as numpy's
    # stable sort by item gives them in read_history.
    for row in rows:
        item, code = row[0], row[1] % 256
        weight = weights[code]
        if code == rate:
            weight *= row[3] or 0.0
        if decay:
            weight *= 2.0 ** ((row[2] - newest) / scale)
        by_item[item] = by_item.get(item, 0.0) + weight
        rank = ranks[code]
        if rank > action.get(item, 0):
            action[item] = rank
        if code == purchase:
            bought.add(item)
    cap = table.cap
    if cap is not None:
        by_item = {item: min(weight, cap) for item, weight in by_item.items()}
    kept = sorted(item for item, weight in by_item.items() if weight > 0)
    kept.sort(key=lambda item: -by_item[item])  # stable: ties stay by item index
    affinity = [by_item[item] for item in kept]
    return History(
        items=np.array(kept, dtype=np.int32),
        weights=np.array(affinity, dtype=np.float64),
        seen=np.array(sorted(by_item), dtype=np.int32),
        bought=np.array(sorted(bought), dtype=np.int32),
        actions=np.array([action.get(item, 0) for item in kept], dtype=np.int8),
        preferred=_small_preferences(kept, affinity, items),
        rows=rows,
    )


def _small_preferences(
    kept: Sequence[int], affinity: Sequence[float], items: ItemTable
) -> dict[int, float]:
    categories = items.category
    totals: dict[int, float] = {}
    for item, weight in zip(kept, affinity, strict=True):
        code = int(categories[item]) if item < len(categories) else -1
        if code >= 0:
            totals[code] = totals.get(code, 0.0) + weight
    whole = sum(totals.values())
    top = sorted(totals, key=lambda code: (-totals[code], code))[:_PREFERRED]
    return {code: totals[code] / whole for code in top if totals[code] > 0}


def _preferences(
    kept: npt.NDArray[np.int64], affinity: FloatArray, items: ItemTable
) -> dict[int, float]:
    """The shopper's top categories and their share of the affinity."""
    known = kept < len(items)
    codes = items.category[kept[known]]
    described = codes >= 0
    if not described.any():
        return {}
    totals = np.bincount(codes[described], weights=affinity[known][described])
    top = np.argsort(-totals, kind="stable")[:_PREFERRED]
    share = totals / totals.sum()
    return {int(c): float(share[c]) for c in top.tolist() if totals[c] > 0}


def user_profile(history: History, items: ItemTable, now: float | None = None) -> UserProfile:
    """Recency, frequency, monetary value and preferred categories of one shopper."""
    rows = history.rows
    if not rows:
        return UserProfile()
    newest = max(r[2] for r in rows) / 1000.0
    oldest = min(r[2] for r in rows) / 1000.0
    purchases = [r for r in rows if r[1] == TypeCode.purchase]
    orders = {r[6] for r in purchases if r[6] is not None}
    monetary = sum((r[5] or 0.0) * (r[4] or 1.0) for r in purchases)
    moment = time.time() if now is None else now
    return UserProfile(
        events=len(rows),
        items=len(history.seen),
        first_seen=datetime.fromtimestamp(oldest, tz=timezone.utc),
        last_seen=datetime.fromtimestamp(newest, tz=timezone.utc),
        recency_days=max(0.0, (moment - newest) / _DAY),
        orders=len(orders),
        monetary=float(monetary),
        average_order_value=float(monetary) / len(orders) if orders else None,
        preferred_categories=tuple(items.category_names[c] for c in history.preferred),
    )
