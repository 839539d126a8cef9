"""Train/test splits of an event log: leave-last-out per user, and a global time cut."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.arrays import EventArrays

__all__ = ["EventArrays", "Split", "leave_last_out", "temporal_split"]


@attrs.frozen(eq=False)
class Split:
    """Training events and, per test user, the items to find.

    Attributes
    ----------
    train:
        The events a model may learn from.
    users:
        The test users (``int32``), sorted.
    indptr, targets:
        ``targets[indptr[t]:indptr[t + 1]]`` are the items test user ``users[t]`` should get.
    """

    train: EventArrays
    users: npt.NDArray[np.int32]
    indptr: npt.NDArray[np.int64]
    targets: npt.NDArray[np.int32]

    def targets_of(self, position: int) -> npt.NDArray[np.int32]:
        """The target items of the ``position``-th test user."""
        return self.targets[self.indptr[position] : self.indptr[position + 1]]

    def __len__(self) -> int:
        return len(self.users)


def _group(
    users: npt.NDArray[np.int32], items: npt.NDArray[np.int32]
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """Distinct (user, item) pairs grouped by user: (users, indptr, items)."""
    pairs = np.unique(users.astype(np.int64) << 32 | items.astype(np.int64))
    u = (pairs >> 32).astype(np.int32)
    i = (pairs & 0xFFFFFFFF).astype(np.int32)
    test_users, counts = np.unique(u, return_counts=True)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return test_users.astype(np.int32), indptr, i


def leave_last_out(events: Any, *, min_events: int = 2) -> Split:
    """Each user's last event (by time, ties by log order) is the test item.

    Parameters
    ----------
    events:
        Interactions-like arrays.
    min_events:
        Users with fewer events keep them all in training and are not tested.
    """
    ev = EventArrays.of(events)
    order = np.lexsort((np.arange(len(ev)), ev.timestamps, ev.users))
    users_sorted = ev.users[order]
    last = np.ones(len(ev), dtype=bool)
    last[:-1] = users_sorted[1:] != users_sorted[:-1]
    counts = np.bincount(ev.users, minlength=ev.n_users)
    test_pos = order[last & (counts[users_sorted] >= min_events)]
    is_test = np.zeros(len(ev), dtype=bool)
    is_test[test_pos] = True
    test_users, indptr, targets = _group(ev.users[is_test], ev.items[is_test])
    return Split(ev.select(~is_test), test_users, indptr, targets)


def temporal_split(
    events: Any,
    cut: float,
    *,
    new_items_only: bool = False,
    test_mask: npt.NDArray[np.bool_] | None = None,
) -> Split:
    """Events before ``cut`` train; users with training history are tested on the items
    of their events at or after ``cut``.

    Parameters
    ----------
    events:
        Interactions-like arrays.
    cut:
        Epoch seconds of the cut.
    new_items_only:
        Only items the user had no training event for count as targets (discovery).
    test_mask:
        Optionally, which events may become targets (e.g. only purchases).
    """
    ev = EventArrays.of(events)
    before = ev.timestamps < cut
    train = ev.select(before)
    known = np.zeros(ev.n_users, dtype=bool)
    known[train.users] = True
    after = ~before & known[ev.users]
    if test_mask is not None:
        after &= test_mask
    users, items = ev.users[after], ev.items[after]
    if new_items_only:
        seen = set((train.users.astype(np.int64) << 32 | train.items).tolist())
        fresh = np.fromiter(
            ((int(u) << 32 | int(i)) not in seen for u, i in zip(users, items, strict=True)),
            dtype=bool,
            count=len(users),
        )
        users, items = users[fresh], items[fresh]
    test_users, indptr, targets = _group(users, items)
    return Split(train, test_users, indptr, targets)
