"""Recommendations for many users at once: the engine's parallel ``score_many`` plus the rules.

Histories are the fitted model's affinities (as of the last fit or refresh) and purchases
come from the serving state, so no per-user query is made. Scores get the same category
boost as :meth:`Recommender.recommend`; items the rules do not allow are dropped, and a
short row is completed like a single list (trending in the user's categories, trending,
popular). Content blending and reasons naming an item are left to the single-user path;
a :class:`RecommendationBatch` renders one user's list with reasons on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import UserItemMatrix
from recsdk.errors import NotFitted
from recsdk.recommender import lists
from recsdk.recommender.profile import History
from recsdk.recommender.reasons import render
from recsdk.recommender.results import Recommendations
from recsdk.recommender.rules import Pick, Picker, Rules
from recsdk.recommender.state import ServingState
from recsdk.store import EventStore

__all__ = ["RecommendationBatch", "UserDirectory", "recommend_batch"]

_PREFERRED = 3
# The reason of each entry of a batch, by code (``RecommendationBatch.reasons``).
_REASONS = (lists.PERSONAL, "trending_in_category", "trending", "popular")
IntArray = npt.NDArray[np.int32]


@attrs.frozen(eq=False, repr=False)
class RecommendationBatch:
    """The lists of many users: arrays, and :class:`Recommendations` on demand.

    Attributes
    ----------
    user_ids:
        The users, in the order of the rows.
    items, scores:
        ``(len(user_ids), k)`` item indices and scores; ``-1`` pads a row only when fewer
        than ``k`` items are allowed at all.
    reasons:
        Why each item is there: 0 the shopper's history, 1 trending in one of their
        categories, 2 trending, 3 popular.
    """

    user_ids: list[str]
    items: IntArray
    scores: npt.NDArray[np.float32]
    reasons: npt.NDArray[np.int8]
    _state: ServingState
    _histories: UserItemMatrix
    _purchases: UserItemMatrix | None
    _rows: dict[str, int] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        """A line, not the arrays and the serving state behind them."""
        users = ", ".join(self.user_ids[:3]) + (", ..." if len(self.user_ids) > 3 else "")
        k = self.items.shape[1] if self.items.ndim == 2 else 0
        return f"<RecommendationBatch of {len(self.user_ids)} users ({users}), k={k}>"

    def __len__(self) -> int:
        return len(self.user_ids)

    def __iter__(self) -> Iterator[tuple[str, list[str]]]:
        """``(user_id, item_ids)`` per user."""
        names = self._state.items.ids
        for user, row in zip(self.user_ids, self.items.tolist(), strict=True):
            yield user, [names[i] for i in row if i >= 0]

    def item_ids(self, user_id: str) -> list[str]:
        """One user's item ids, best first."""
        names = self._state.items.ids
        return [names[i] for i in self.items[self._row(user_id)].tolist() if i >= 0]

    def __getitem__(self, user_id: str) -> Recommendations:
        """One user's list with catalog fields and reasons, as :meth:`Recommender.recommend`."""
        row = self._row(user_id)
        state = self._state
        history = self._history(row)
        share = state.collaborative_share(history.items)
        entries = zip(
            self.items[row].tolist(), self.scores[row].tolist(), self.reasons[row], strict=True
        )
        picks: list[Pick] = [
            (item, score, _REASONS[reason], -1) for item, score, reason in entries if item >= 0
        ]
        return Recommendations(render(state, lists.explain(state, history, share, picks)))

    def _history(self, row: int) -> History:
        items, weights = self._histories.row(row)
        order = np.argsort(-weights, kind="stable")
        items = items[order]
        bought = self._purchases.row(row)[0] if self._purchases is not None else items[:0]
        actions = np.where(np.isin(items, bought), 6, 1).astype(np.int8)
        affinity = weights[order].astype(np.float64)
        return History(items, affinity, np.sort(items), bought, actions, {})

    def _row(self, user_id: str) -> int:
        if not self._rows:
            self._rows.update((name, row) for row, name in enumerate(self.user_ids))
        return self._rows[user_id]


def recommend_batch(
    state: ServingState,
    store: EventStore,
    directory: UserDirectory,
    user_ids: Iterable[str] | None,
    k: int,
    exclude_purchased: bool,
    exclude_viewed: bool,
    boost: float,
) -> RecommendationBatch:
    """See :meth:`Recommender.recommend_many`."""
    model = state.similarity
    if model is None:
        raise NotFitted("recommend_many needs a model fitted on some events")
    names, rows = directory.users(store, user_ids)
    histories = model.affinity(rows)
    bought = state.purchases.select_rows(rows) if state.purchases is not None else None
    exclude = bought if exclude_purchased else None
    fetch = k + 10
    items, scores = model.score_many(
        histories, k=fetch, exclude=exclude, exclude_history=exclude_viewed, fill=False
    )
    values = scores.astype(np.float64)
    values[items < 0] = -np.inf
    safe = np.where(items >= 0, items, 0)
    inside = safe < len(state.eligible)
    allowed = (items >= 0) & inside & state.eligible[np.where(inside, safe, 0)]
    values[~allowed] = -np.inf
    preferred = _preferences(state, histories)
    if boost:
        values = values * (1.0 + boost * preferred.lookup(state, safe))
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    top_items = np.take_along_axis(items, order, axis=1)
    top_values = np.take_along_axis(values, order, axis=1)
    top_items[~np.isfinite(top_values)] = -1
    # A row without history has nothing of its own: filled as a single list would be.
    top_items[histories.row_lengths() == 0] = -1
    top_scores = np.where(np.isfinite(top_values), top_values, 0.0).astype(np.float32)
    reasons = np.zeros(top_items.shape, dtype=np.int8)
    short = np.flatnonzero((top_items < 0).any(axis=1))
    for row in short.tolist():
        _complete(state, histories, exclude, exclude_viewed, preferred, row, top_items, reasons)
    top_scores[reasons > 0] = 0.0
    return RecommendationBatch(names, top_items, top_scores, reasons, state, histories, bought)


class UserDirectory:
    """The store's user ids and indices, read incrementally (an id's index never changes)."""

    def __init__(self) -> None:
        self._names: list[str] = []
        self._indices: list[int] = []
        self._index: dict[str, int] = {}
        self._last = 0
        self._lock = threading.Lock()

    def users(
        self, store: EventStore, user_ids: Iterable[str] | None
    ) -> tuple[list[str], npt.NDArray[np.int64]]:
        """The given users (default: all) and their indices (``-1``: unknown)."""
        with self._lock:
            for ix, name, anonymous in store.user_index(after=self._last):
                self._last = max(self._last, ix)
                if not anonymous:
                    self._names.append(name)
                    self._indices.append(ix)
                    self._index[name] = ix
            if user_ids is None:
                return list(self._names), np.asarray(self._indices, dtype=np.int64)
            names = list(user_ids)
            found = [self._index.get(name, -1) for name in names]
        return names, np.asarray(found, dtype=np.int64)


@attrs.frozen(eq=False)
class _Preferences:
    """Each row's top categories (``-1``: none) and their shares, ``(n_rows, 3)`` arrays."""

    codes: npt.NDArray[np.int32]
    shares: npt.NDArray[np.float64]

    def lookup(
        self, state: ServingState, items: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.float64]:
        """The share of each candidate's category in its row (0 when not preferred)."""
        inside = items < len(state.items)
        codes = np.where(inside, state.items.category[np.where(inside, items, 0)], -1)
        out = np.zeros(items.shape, dtype=np.float64)
        for rank in range(self.codes.shape[1]):
            preferred = self.codes[:, rank : rank + 1]
            out += np.where(
                (codes == preferred) & (preferred >= 0), self.shares[:, rank : rank + 1], 0
            )
        return out

    def of_row(self, row: int) -> list[int]:
        return [int(code) for code in self.codes[row] if code >= 0]


def _preferences(state: ServingState, histories: UserItemMatrix) -> _Preferences:
    """Each row's top categories by affinity, as :func:`~.profile.read_history` finds them."""
    n_rows = histories.n_users
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), histories.row_lengths())
    items = histories.indices
    inside = items < len(state.items)
    codes = np.where(inside, state.items.category[np.where(inside, items, 0)], -1)
    described = codes >= 0
    # Affinity per (row, category), summed by the engine's sparse builder.
    totals = UserItemMatrix.from_coo(
        rows[described], codes[described], histories.data[described].astype(np.float64),
        n_users=n_rows, n_items=len(state.items.category_names),
    )  # fmt: skip
    owners = np.repeat(np.arange(n_rows, dtype=np.int64), totals.row_lengths())
    whole = np.bincount(owners, weights=totals.data.astype(np.float64), minlength=n_rows)
    shares = totals.data / np.where(whole[owners] > 0, whole[owners], 1.0)
    top_codes = np.full((n_rows, _PREFERRED), -1, dtype=np.int32)
    top_shares = np.zeros((n_rows, _PREFERRED), dtype=np.float64)
    remaining = np.where(shares > 0, shares, -1.0)
    segments = totals.indptr[:-1][totals.row_lengths() > 0]
    sizes = totals.row_lengths()[totals.row_lengths() > 0]
    for rank in range(_PREFERRED):
        if not len(segments):
            break
        best = np.maximum.reduceat(remaining, segments)
        hits = np.flatnonzero(remaining == np.repeat(best, sizes))
        first = hits[np.searchsorted(hits, segments)][best >= 0]  # ties: the lowest code
        top_codes[owners[first], rank] = totals.indices[first]
        top_shares[owners[first], rank] = shares[first]
        remaining[first] = -2.0
    return _Preferences(top_codes, top_shares)


def _complete(
    state: ServingState,
    histories: UserItemMatrix,
    exclude: UserItemMatrix | None,
    exclude_viewed: bool,
    preferred: _Preferences,
    row: int,
    items: IntArray,
    reasons: npt.NDArray[np.int8],
) -> None:
    """Fill one short row like a single list: its categories' trending, trending, popular."""
    present = items[row][items[row] >= 0]
    blocked = [present]
    if exclude is not None:
        blocked.append(exclude.row(row)[0])
    if exclude_viewed:
        blocked.append(histories.row(row)[0])
    rules = Rules(k=items.shape[1], blocked=np.unique(np.concatenate(blocked)).astype(np.int32))
    picker = Picker(rules, state.eligible, state.items.category)
    lists.backfill(picker, state, preferred.of_row(row))
    extra = picker.finish()[: items.shape[1] - len(present)]
    have = len(present)
    items[row, have : have + len(extra)] = [pick[0] for pick in extra]
    reasons[row, have : have + len(extra)] = [_REASONS.index(pick[2]) for pick in extra]
