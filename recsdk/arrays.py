"""Events as parallel numpy arrays: the shape shared by the store, the datasets and the engine."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import numpy as np
import numpy.typing as npt

__all__ = ["EventArrays"]

_Arrays = TypeVar("_Arrays", bound="EventArrays")


@attrs.frozen(eq=False)
class EventArrays:
    """Events as parallel arrays: row ``r`` is user ``users[r]`` doing ``types[r]`` to
    ``items[r]`` at ``timestamps[r]`` (epoch seconds) with strength ``values[r]``.

    The one shape the store returns (:class:`recsdk.store.Interactions`), the dataset
    loaders return (:class:`recsdk.datasets.EventLog`), and the engine and the evaluation
    take. Indices are below ``n_users`` and ``n_items``.
    """

    users: npt.NDArray[np.int32]
    items: npt.NDArray[np.int32]
    types: npt.NDArray[np.int8]
    timestamps: npt.NDArray[np.float64]
    values: npt.NDArray[np.float32]
    n_users: int
    n_items: int

    @classmethod
    def of(cls, events: Any) -> EventArrays:
        """Copy the arrays of any interactions-like object (missing ones get defaults)."""
        n = len(events.users)
        types = getattr(events, "types", None)
        values = getattr(events, "values", None)
        stamps = getattr(events, "timestamps", None)
        return EventArrays(
            users=np.asarray(events.users, dtype=np.int32),
            items=np.asarray(events.items, dtype=np.int32),
            types=np.asarray(types if types is not None else np.full(n, 2), dtype=np.int8),
            timestamps=np.asarray(stamps if stamps is not None else np.arange(n), dtype=float),
            values=np.asarray(values if values is not None else np.ones(n), dtype=np.float32),
            n_users=int(events.n_users),
            n_items=int(events.n_items),
        )

    def __len__(self) -> int:
        return len(self.users)

    def select(self: _Arrays, mask: npt.NDArray[np.bool_]) -> _Arrays:
        """The events where ``mask`` is true (same index space)."""
        return attrs.evolve(
            self,
            users=self.users[mask],
            items=self.items[mask],
            types=self.types[mask],
            timestamps=self.timestamps[mask],
            values=self.values[mask],
        )

    @classmethod
    def empty(cls: type[_Arrays], n_users: int = 0, n_items: int = 0, **extra: Any) -> _Arrays:
        """No events (``extra`` fills a subclass's own fields)."""
        return cls(
            users=np.empty(0, dtype=np.int32),
            items=np.empty(0, dtype=np.int32),
            types=np.empty(0, dtype=np.int8),
            timestamps=np.empty(0, dtype=np.float64),
            values=np.empty(0, dtype=np.float32),
            n_users=n_users,
            n_items=n_items,
            **extra,
        )
