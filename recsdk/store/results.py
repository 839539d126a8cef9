"""What the event store's methods return: small frozen values and arrays."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from recsdk.arrays import EventArrays
from recsdk.errors import InvalidEvent
from recsdk.events import Event, format_timestamp

__all__ = [
    "AddResult",
    "BasketRow",
    "HistoryEntry",
    "Interactions",
    "ItemEventRow",
    "Rejected",
    "ShopperData",
    "StoreCounts",
]

ItemEventRow = tuple[int, int, int, float | None, float | None, float | None, str | None]
"""``(item_ix, type_code, ts_ms, value, quantity, price, order_id)`` of one item event."""

BasketRow = tuple[str | None, str | None, int]
"""``(order_id, session_id, item_ix)`` of one order line or session cart event."""


@attrs.frozen
class Rejected:
    """An event that was not stored, with its position in the input and the reason."""

    index: int
    error: InvalidEvent

    @property
    def field(self) -> str:
        return self.error.field

    @property
    def reason(self) -> str:
        return self.error.reason


@attrs.frozen
class AddResult:
    """What :meth:`EventStore.add_many` did with a batch.

    ``inserted + duplicates + len(rejected)`` is the number of events given.
    """

    inserted: int
    """New events stored."""
    duplicates: int
    """Events whose ``event_id`` was already stored (or repeated in the batch): kept once."""
    rejected: tuple[Rejected, ...] = ()
    """Invalid events, not stored; the valid ones beside them were."""
    duplicate_indices: tuple[int, ...] = ()
    """Positions of the duplicates in the input, with ``add_many(report_duplicates=True)``."""


@attrs.frozen
class HistoryEntry:
    """One item event in a user's history."""

    item_id: str
    type: str
    timestamp: datetime


@attrs.frozen
class StoreCounts:
    """How much the store holds."""

    events: int
    users: int
    anonymous_ids: int
    items: int
    catalog_items: int
    identity_links: int


@attrs.frozen(eq=False)
class Interactions(EventArrays):
    """User-item events read from the store, ready for the engine.

    Row ``r`` says user ``users[r]`` did something of type ``types[r]`` (a
    :class:`~recsdk.events.TypeCode`) to item ``items[r]`` at ``timestamps[r]`` (epoch
    seconds) with strength ``values[r]`` (the rating of a ``rate`` event, else the quantity,
    else 1). User and item indices are the store's integer ids: below ``n_users`` and
    ``n_items``, though not every index has rows. Anonymous visitors who were later
    identified appear under their user's index.

    Pass ``watermark`` as ``since`` to the next :meth:`EventStore.interactions` call to read
    only the events stored after these. ``erasures`` is the store's erasure mark
    (:meth:`EventStore.erasure_mark`): when it grows, events read before may be gone, and a
    model fitted on them should be refitted.
    """

    watermark: int = 0
    erasures: int = 0


@attrs.frozen
class ShopperData:
    """Everything the store holds about one shopper (:meth:`EventStore.export_user`).

    ``received_at[n]`` is when the store received ``events[n]``; ``linked_at`` says when
    each of ``anonymous_ids`` that is linked to ``user_id`` was linked to it.
    """

    user_id: str | None
    anonymous_ids: tuple[str, ...]
    events: tuple[Event, ...]
    received_at: tuple[datetime, ...]
    linked_at: Mapping[str, datetime]

    def to_dict(self) -> dict[str, Any]:
        """The export as JSON-ready values: events in their wire format, oldest first, each
        with the time the store received it (``received_at``), and the links' times."""
        return {
            "user_id": self.user_id,
            "anonymous_ids": list(self.anonymous_ids),
            "linked_at": {anon: format_timestamp(at) for anon, at in self.linked_at.items()},
            "events": [
                {**event.to_dict(), "received_at": format_timestamp(at)}
                for event, at in zip(self.events, self.received_at, strict=True)
            ],
        }
