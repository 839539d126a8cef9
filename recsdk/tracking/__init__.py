"""Tracking clients for server-side events: :class:`Tracker` (threads) and :class:`AsyncTracker`.

They need only httpx and attrs: this package imports neither numba, SQLAlchemy nor the
event store, so it is cheap to load in every web worker.
"""

from recsdk.tracking.async_client import AsyncTracker
from recsdk.tracking.client import Tracker
from recsdk.tracking.policy import TrackerOptions

__all__ = ["AsyncTracker", "Tracker", "TrackerOptions"]
