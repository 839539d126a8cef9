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
    RecsdkError,
    SchemaMismatch,
    StoreError,
    ValidationError,
)
from recsdk.events import Event, TypeCode

if TYPE_CHECKING:
    from recsdk.store import AddResult, EventStore, Interactions

__version__ = "0.1.0.dev0"

__all__ = [
    "AddResult",
    "CatalogItem",
    "Event",
    "EventStore",
    "Interactions",
    "InvalidEvent",
    "InvalidItem",
    "RecsdkError",
    "SchemaMismatch",
    "StoreError",
    "TypeCode",
    "ValidationError",
    "__version__",
]

_LAZY = {
    "AddResult": "recsdk.store",
    "EventStore": "recsdk.store",
    "Interactions": "recsdk.store",
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
