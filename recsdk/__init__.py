"""recsdk: tracking and product recommendations for the Python backend a shop already runs.

The public names live here. Heavy modules (SQLAlchemy for the store, numba for the engine)
load on first use, not at ``import recsdk``, so web workers that only track stay light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from recsdk.catalog import CatalogItem
from recsdk.errors import (
    InvalidEvent,
    InvalidItem,
    NotFitted,
    RecsdkError,
    SchemaMismatch,
    StoreError,
    ValidationError,
)
from recsdk.events import Event, TypeCode

if TYPE_CHECKING:
    from recsdk.datasets import synthetic_shop
    from recsdk.engine import EASE, ItemSimilarity, Weighting
    from recsdk.recommender import Recommendation, Recommendations, Recommender
    from recsdk.store import AddResult, EventStore, Interactions
    from recsdk.tracking import AsyncTracker, Tracker

__version__ = "0.1.0.dev0"

__all__ = [
    "EASE",
    "AddResult",
    "AsyncTracker",
    "CatalogItem",
    "Event",
    "EventStore",
    "Interactions",
    "InvalidEvent",
    "InvalidItem",
    "ItemSimilarity",
    "NotFitted",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "RecsdkError",
    "SchemaMismatch",
    "StoreError",
    "Tracker",
    "TypeCode",
    "ValidationError",
    "Weighting",
    "__version__",
    "synthetic_shop",
]

_LAZY = {
    "AddResult": "recsdk.store",
    "AsyncTracker": "recsdk.tracking",
    "Tracker": "recsdk.tracking",
    "EASE": "recsdk.engine",
    "EventStore": "recsdk.store",
    "Interactions": "recsdk.store",
    "ItemSimilarity": "recsdk.engine",
    "Recommendation": "recsdk.recommender",
    "Recommendations": "recsdk.recommender",
    "Recommender": "recsdk.recommender",
    "Weighting": "recsdk.engine",
    "synthetic_shop": "recsdk.datasets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recsdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
