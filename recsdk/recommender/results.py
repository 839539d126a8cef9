"""What the recommender returns: :class:`Recommendation`, :class:`Recommendations` and
:class:`UserProfile`.

A :class:`Recommendations` list is an immutable sequence with a ``rec_id``: a fresh UUID for
every list handed out, cached or not, so that a click or a purchase from one displayed list
can be attributed to it (the ``rec_id`` field of an event).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, overload

import attrs

__all__ = ["REASON_TYPES", "Recommendation", "Recommendations", "UserProfile"]

REASON_TYPES: tuple[str, ...] = (
    "viewed",
    "bought",
    "added_to_cart",
    "wishlisted",
    "rated",
    "bought_together",
    "similar",
    "trending_in_category",
    "trending",
    "popular",
    "new",
)
"""Every ``reason_type``: stable names a page can translate instead of ``reason``."""

_CATALOG_FIELDS = ("title", "url", "image_url", "price", "category")


@attrs.frozen(slots=True)
class Recommendation:
    """One recommended item and why.

    Attributes
    ----------
    item_id:
        The item.
    score:
        How strongly it is recommended; comparable within one list only. Items that fill
        a list from trending or popular items score 0.
    reason:
        Why, in words for the shopper: ``"because you viewed Red mug"``,
        ``"bought together with Red mug"``, ``"trending in kitchen"``, ``"popular"``.
    reason_type:
        The kind of reason, one of :data:`REASON_TYPES`.
    reason_item_id:
        The item the reason names (the one viewed, bought together...), if any.
    title, category, price, url, image_url:
        From the catalog when known (``url`` and ``image_url`` from the item's
        ``attributes``).
    """

    item_id: str
    score: float
    reason: str
    reason_type: str
    reason_item_id: str | None = None
    title: str | None = None
    category: str | None = None
    price: float | None = None
    url: str | None = None
    image_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: catalog fields and ``reason_item_id`` only when known."""
        out: dict[str, Any] = {
            "item_id": self.item_id,
            "score": self.score,
            "reason": self.reason,
            "reason_type": self.reason_type,
        }
        if self.reason_item_id is not None:
            out["reason_item_id"] = self.reason_item_id
        for name in _CATALOG_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


class Recommendations(Sequence[Recommendation]):
    """An immutable list of :class:`Recommendation` with the ``rec_id`` of this showing.

    Parameters
    ----------
    items:
        The recommendations, best first.
    rec_id:
        The list's id; a new UUID by default.
    kind:
        What made it: ``"recommend"``, ``"similar_items"``, ``"bought_together"``,
        ``"trending"``.
    """

    __slots__ = ("_items", "kind", "rec_id")

    def __init__(
        self, items: Sequence[Recommendation], rec_id: str | None = None, kind: str = "recommend"
    ) -> None:
        self._items = tuple(items)
        self.rec_id = rec_id if rec_id is not None else str(uuid.uuid4())
        self.kind = kind

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> Recommendation: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Recommendation, ...]: ...

    def __getitem__(self, index: int | slice) -> Recommendation | tuple[Recommendation, ...]:
        return self._items[index]

    def __iter__(self) -> Iterator[Recommendation]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Recommendations):
            return NotImplemented
        return self._items == other._items and self.rec_id == other.rec_id

    def __hash__(self) -> int:
        return hash((self._items, self.rec_id))

    def __repr__(self) -> str:
        shown = ", ".join(f"{r.item_id!r} ({r.reason_type})" for r in self._items[:5])
        more = f", ... {len(self._items) - 5} more" if len(self._items) > 5 else ""
        return f"Recommendations(rec_id={self.rec_id!r}, kind={self.kind!r}, [{shown}{more}])"

    @property
    def items(self) -> tuple[Recommendation, ...]:
        """The recommendations as a tuple."""
        return self._items

    @property
    def item_ids(self) -> list[str]:
        """The recommended item ids, best first."""
        return [r.item_id for r in self._items]

    def to_dict(self) -> dict[str, Any]:
        """``{"rec_id": ..., "items": [...]}``, the answer of the HTTP endpoints."""
        return {"rec_id": self.rec_id, "items": [r.to_dict() for r in self._items]}

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


@attrs.frozen
class UserProfile:
    """What a shopper's recent history says about them (the events the recommender reads).

    Attributes
    ----------
    events:
        Item events read (at most the recommender's ``history_limit``).
    items:
        Distinct items among them.
    first_seen, last_seen:
        The oldest and newest of those events.
    recency_days:
        Days from the newest event to now.
    orders:
        Distinct orders (``order_id`` of purchases): the frequency.
    monetary:
        Sum of ``price * quantity`` over purchases (``quantity`` 1 when missing).
    average_order_value:
        ``monetary / orders``; ``None`` without orders.
    preferred_categories:
        Categories of the items the shopper engaged with most, strongest first.
    """

    events: int = 0
    items: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    recency_days: float | None = None
    orders: int = 0
    monetary: float = 0.0
    average_order_value: float | None = None
    preferred_categories: tuple[str, ...] = ()
