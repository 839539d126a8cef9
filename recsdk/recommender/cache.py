"""The TTL caches in front of the lists, safe for many threads.

Two caches, each a ``cachetools.TTLCache`` behind one lock (cachetools is not
thread-safe):

- per shopper (``(user_id, anonymous_id)``): the history read from the store and the lists
  already made from it, by options. Tracking an event through the recommender invalidates
  the shopper's entries, so their next list reads their new history.
- per item list (similar items, bought together, trending), by options.

Entries belong to a generation of the serving state and are ignored once another one is
served. A shopper entry read from the store while that shopper's events were being
tracked is not stored: the invalidation stamps each id with a tick of a counter, and an
entry read before the last stamp of one of its ids is dropped.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Hashable, Iterable
from typing import Any

import attrs
import cachetools
import numpy as np
import numpy.typing as npt

from recsdk.recommender.profile import History
from recsdk.recommender.results import Recommendation

__all__ = ["Caches", "ShopperEntry", "ShopperKey"]

ShopperKey = tuple[str | None, str | None]
"""``(user_id, anonymous_id)``."""


@attrs.define(eq=False)
class ShopperEntry:
    """A shopper's history and the lists made from it, in one generation."""

    generation: int
    history: History
    share: npt.NDArray[np.float64] | None = None  # the history items' collaborative share
    lists: dict[Hashable, tuple[Recommendation, ...]] = attrs.field(factory=dict)


def _ids(key: ShopperKey) -> list[str]:
    user_id, anonymous_id = key
    out = []
    if user_id is not None:
        out.append("u:" + user_id)
    if anonymous_id is not None:
        out.append("a:" + anonymous_id)
    return out


class Caches:
    """The recommender's caches. ``ttl`` in seconds; ``maxsize`` entries per cache."""

    def __init__(self, maxsize: int, ttl: float) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._lock = threading.Lock()
        self._shoppers: cachetools.TTLCache[ShopperKey, ShopperEntry] = cachetools.TTLCache(
            maxsize, ttl
        )
        self._lists: cachetools.TTLCache[Hashable, tuple[Recommendation, ...]] = (
            cachetools.TTLCache(maxsize, ttl)
        )
        self._keys_by_id: dict[str, set[ShopperKey]] = {}
        self._stamps: cachetools.TTLCache[str, int] = cachetools.TTLCache(maxsize, 4 * ttl + 60.0)
        self._ticks = itertools.count(1)
        self._last_tick = 0

    def ticket(self) -> int:
        """A tick to pass to :meth:`put_shopper` for data read from now on."""
        return self._last_tick

    def shopper(self, key: ShopperKey, generation: int) -> ShopperEntry | None:
        with self._lock:
            entry = self._shoppers.get(key)
        if entry is None or entry.generation != generation:
            return None
        return entry

    def put_shopper(self, key: ShopperKey, entry: ShopperEntry, ticket: int) -> None:
        """Keep ``entry`` unless one of its ids was invalidated after ``ticket``."""
        ids = _ids(key)
        with self._lock:
            if any(self._stamps.get(name, 0) > ticket for name in ids):
                return
            if len(self._keys_by_id) > 2 * self.maxsize:
                self._keys_by_id.clear()
                self._shoppers.clear()
            self._shoppers[key] = entry
            for name in ids:
                self._keys_by_id.setdefault(name, set()).add(key)

    def invalidate(self, user_ids: Iterable[str] = (), anonymous_ids: Iterable[str] = ()) -> None:
        """Forget the shopper entries of these ids."""
        names = [*("u:" + u for u in user_ids), *("a:" + a for a in anonymous_ids)]
        if not names:
            return
        with self._lock:
            tick = next(self._ticks)
            self._last_tick = tick
            for name in names:
                self._stamps[name] = tick
                for key in self._keys_by_id.pop(name, ()):
                    self._shoppers.pop(key, None)

    def get_list(self, key: Hashable) -> tuple[Recommendation, ...] | None:
        with self._lock:
            return self._lists.get(key)

    def put_list(self, key: Hashable, value: tuple[Recommendation, ...]) -> None:
        with self._lock:
            self._lists[key] = value

    def clear(self) -> None:
        """Forget everything (the serving state changed)."""
        with self._lock:
            self._shoppers.clear()
            self._lists.clear()
            self._keys_by_id.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"shoppers": len(self._shoppers), "lists": len(self._lists)}
