"""The event store: SQLAlchemy Core tables and :class:`EventStore` (SQLite by default)."""

from recsdk.store.results import (
    AddResult,
    HistoryEntry,
    Interactions,
    Rejected,
    ShopperData,
    StoreCounts,
)
from recsdk.store.store import EventStore

__all__ = [
    "AddResult",
    "EventStore",
    "HistoryEntry",
    "Interactions",
    "Rejected",
    "ShopperData",
    "StoreCounts",
]
