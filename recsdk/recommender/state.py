"""The serving state: everything a request reads, built by a fit, updated by a refresh.

A :class:`ServingState` is never changed once requests can see it: a fit, a refresh or a
catalog change builds a new one and the recommender swaps the reference, so a request
works on one consistent state from start to end (the per-item memos inside only grow).
"""

from __future__ import annotations

import copy
import threading
from typing import Any, cast

import attrs
import numpy as np
import numpy.typing as npt

from recsdk.engine import ItemSimilarity, UserItemMatrix
from recsdk.events import TypeCode
from recsdk.recommender.content import ContentIndex
from recsdk.recommender.items import ItemTable
from recsdk.recommender.profile import WeightTable
from recsdk.recommender.together import Baskets
from recsdk.recommender.trending import Rankings, Trending
from recsdk.store import EventStore

__all__ = [
    "FitOptions",
    "ServingState",
    "assemble",
    "fit_state",
    "read_items",
    "refreshed_state",
    "with_catalog",
]

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float32]
_ALL_COLLABORATIVE = 0.5  # from this share on, an item's content neighbours are left out


@attrs.frozen
class FitOptions:
    """How a recommender fits: the model template and its own knobs."""

    model: ItemSimilarity
    trending_half_life_days: float = 7.0
    catalog_only: bool = False
    content_shrinkage: float = 5.0


@attrs.define(eq=False)
class ServingState:
    """Models, item table, rankings and memos of one generation."""

    generation: int
    similarity: ItemSimilarity | None
    together: ItemSimilarity | None
    items: ItemTable
    trending: Trending
    rankings: Rankings
    eligible: npt.NDArray[np.bool_]
    weights: WeightTable
    watermark: int
    purchases: UserItemMatrix | None = None
    content_shrinkage: float = 5.0
    erasures: int = 0  # the store's erasure mark when the models were fitted
    _content: ContentIndex | None = None
    _shares: npt.NDArray[np.float64] | None = None
    _memo: dict[int, tuple[IntArray, FloatArray]] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    @property
    def n_model_items(self) -> int:
        return self.similarity.n_items if self.similarity is not None else 0

    def content(self) -> ContentIndex:
        """The catalog's content index, built on first use."""
        if self._content is None:
            with self._lock:
                if self._content is None:
                    self._content = ContentIndex.build(self.items)
        return self._content

    def neighbors(self, item: int) -> tuple[IntArray, FloatArray]:
        """The model's stored neighbours of ``item`` (empty for items it does not know)."""
        found = self._memo.get(item)
        if found is None:
            if self.similarity is None or item >= self.similarity.n_items:
                found = (np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32))
            else:
                found = self.similarity.neighbors(item)
            if len(self._memo) > 200_000:
                self._memo.clear()
            self._memo[item] = found
        return found

    def collaborative_share(self, items: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:
        """How much the model's neighbours count for each item against its content ones.

        ``n / (n + content_shrinkage)`` for a catalog item ``n`` shoppers touched; 1 from
        0.5 on (enough shoppers: content neighbours are left out) and for items the catalog
        does not describe (they have no content neighbours); 0 for items the model does not
        know.
        """
        table = self._shares
        if table is None:
            counts = self.rankings.popularity
            table = counts / (counts + self.content_shrinkage)
            table[(table >= _ALL_COLLABORATIVE) | ~self.items.described] = 1.0
            table[self.n_model_items :] = 0.0
            self._shares = table
        if len(items) and int(items.max()) >= len(table):
            inside = items < len(table)
            return np.where(inside, table[np.where(inside, items, 0)], 0.0)
        return cast("npt.NDArray[np.float64]", table[items])


def _popularity(model: ItemSimilarity | None) -> npt.NDArray[np.float64]:
    if model is None:
        return np.zeros(0, dtype=np.float64)
    affinity = model.affinity()
    return np.bincount(affinity.indices, minlength=affinity.n_items).astype(np.float64)


def assemble(
    generation: int,
    options: FitOptions,
    similarity: ItemSimilarity | None,
    together: ItemSimilarity | None,
    items: ItemTable,
    trending: Trending,
    watermark: int,
    purchases: UserItemMatrix | None,
    popularity: npt.NDArray[np.float64] | None = None,
    erasures: int = 0,
) -> ServingState:
    if popularity is None:
        popularity = _popularity(similarity)
    return ServingState(
        generation=generation,
        similarity=similarity,
        together=together,
        items=items,
        trending=trending,
        rankings=Rankings.build(trending, popularity, items),
        eligible=items.eligible(options.catalog_only),
        weights=WeightTable.of(options.model.weighting),
        watermark=watermark,
        purchases=purchases,
        content_shrinkage=options.content_shrinkage,
        erasures=erasures,
    )


def purchases_of(data: Any, base: UserItemMatrix | None = None) -> UserItemMatrix | None:
    """Who bought what: ``base`` plus the purchases among ``data`` (1 per user and item)."""
    bought = np.asarray(data.types) == TypeCode.purchase
    users = np.asarray(data.users)[bought]
    items = np.asarray(data.items)[bought]
    if base is not None:
        lengths = base.row_lengths()
        users = np.concatenate((np.repeat(np.arange(base.n_users), lengths), users))
        items = np.concatenate((base.indices, items))
    if not len(users):
        return base
    n_users = max(int(data.n_users), base.n_users if base is not None else 0)
    n_items = max(int(data.n_items), base.n_items if base is not None else 0)
    matrix = UserItemMatrix.from_coo(users, items, n_users=n_users, n_items=n_items)
    return matrix.with_data(np.ones(matrix.nnz, dtype=np.float32))


def read_items(store: EventStore, base: ItemTable | None = None) -> ItemTable:
    base = base or ItemTable.empty()
    new_ids = store.item_index(after=len(base) - 1)
    since = base.catalog_version if base.catalog_version else None
    entries, version = store.catalog_entries(since)
    return base.updated(new_ids, entries, version)


def fit_state(
    store: EventStore, options: FitOptions, baskets: Baskets, generation: int
) -> ServingState:
    """Read everything and fit every model."""
    data = store.interactions()
    items = read_items(store)  # after the events: every item they name is in the table
    n_items = max(len(items), data.n_items)
    similarity = attrs.evolve(options.model).fit(data) if len(data) else None
    trending = Trending.empty(n_items, options.trending_half_life_days).advanced(
        data, n_items, options.model.weighting.type_weights
    )
    together = baskets.fit(store.basket_rows(until=data.watermark), n_items)
    return assemble(
        generation, options, similarity, together, items, trending, data.watermark,
        purchases_of(data), erasures=data.erasures,
    )  # fmt: skip


def refreshed_state(
    state: ServingState,
    store: EventStore,
    options: FitOptions,
    baskets: Baskets,
    generation: int,
) -> ServingState:
    """``state`` updated with the events stored since it was built (incremental fits), or
    fitted afresh when events were erased since (the models must forget them)."""
    data = store.interactions(since=state.watermark)
    if data.erasures != state.erasures:
        return fit_state(store, options, baskets, generation)
    items = read_items(store, state.items)
    if not len(data):
        return attrs.evolve(
            _with_items(state, items, options), generation=generation, watermark=data.watermark
        )
    n_items = max(len(items), data.n_items)
    similarity = state.similarity
    if similarity is None:
        similarity = attrs.evolve(options.model).fit(data)
    else:
        # A shallow copy: partial_fit builds new arrays, so requests reading the old
        # model meanwhile are unaffected.
        similarity = copy.copy(similarity).partial_fit(data)
    trending = state.trending.advanced(data, n_items, options.model.weighting.type_weights)
    rows = store.basket_rows(since=state.watermark, until=data.watermark)
    together = baskets.update(state.together, rows, n_items)
    return assemble(
        generation, options, similarity, together, items, trending, data.watermark,
        purchases_of(data, state.purchases), erasures=data.erasures,
    )  # fmt: skip


def _with_items(state: ServingState, items: ItemTable, options: FitOptions) -> ServingState:
    if items is state.items:
        return state
    return attrs.evolve(
        state,
        items=items,
        rankings=Rankings.build(state.trending, state.rankings.popularity, items),
        eligible=items.eligible(options.catalog_only),
        content=None,
        shares=None,
        memo=state._memo,
        lock=threading.Lock(),
    )


def with_catalog(
    state: ServingState, store: EventStore, options: FitOptions, generation: int
) -> ServingState:
    """``state`` with the item ids and catalog changes stored since it was built."""
    items = read_items(store, state.items)
    return attrs.evolve(_with_items(state, items, options), generation=generation)


def describe(state: ServingState) -> dict[str, Any]:
    """A few numbers about a state, for logs and ``repr``."""
    return {
        "generation": state.generation,
        "items": len(state.items) - 1,
        "model_items": state.n_model_items,
        "watermark": state.watermark,
        "erasures": state.erasures,
        "bought_together": state.together is not None,
    }
