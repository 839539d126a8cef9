"""The :class:`Recommender` facade: tracking and recommendations for a shop in a few lines.

It ties the event store, the engine's models and the caches together. Requests read an
immutable :class:`~recsdk.recommender.state.ServingState` (swapped whole by fits) and
the shopper's live history from the store, behind a TTL cache that tracking through the
facade invalidates.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from recsdk.engine import ItemSimilarity
from recsdk.errors import InvalidEvent, NotFitted, ValidationError, checked_int, checked_number
from recsdk.events import Event, check_id
from recsdk.recommender import lists
from recsdk.recommender.background import Periodic
from recsdk.recommender.batch import RecommendationBatch, UserDirectory, recommend_batch
from recsdk.recommender.cache import Caches, ShopperEntry, ShopperKey
from recsdk.recommender.persist import current_version, load_state, save_state
from recsdk.recommender.profile import History, read_history, user_profile
from recsdk.recommender.reasons import render
from recsdk.recommender.results import Recommendations, UserProfile
from recsdk.recommender.rules import NO_SUCH_CATEGORY, Rules
from recsdk.recommender.state import (
    FitOptions,
    ServingState,
    describe,
    fit_state,
    refreshed_state,
    with_catalog,
)
from recsdk.recommender.together import Baskets
from recsdk.store import AddResult, EventStore, ShopperData

__all__ = ["Recommender"]

log = logging.getLogger("recsdk.recommender")

_NO_IDS: tuple[str, ...] = ()
_LINKS_LIMIT = 100_000


def _ids(field: str, values: object) -> tuple[str, ...]:
    """One id or many as a tuple (a lone string is one id, not its characters; integers
    become strings, as in events)."""
    if values is None:
        return _NO_IDS
    if isinstance(values, str):
        return (values,)
    if not isinstance(values, Iterable):
        return (_checked(field, values),)
    return tuple(v if isinstance(v, str) else _checked(field, v) for v in values)


def _checked(field: str, value: object) -> str:
    try:
        return check_id(field, value)
    except InvalidEvent as error:
        raise ValidationError(error.field, error.reason) from None


def _shopper_key(user_id: object, anonymous_id: object) -> ShopperKey:
    """A shopper's ids as the store keeps them (integers become strings). Strings pass as
    they are: they are checked once per cached history, off the cached path."""
    return (_as_text("user_id", user_id), _as_text("anonymous_id", anonymous_id))


def _as_text(field: str, value: object) -> str | None:
    return value if value is None or isinstance(value, str) else _checked(field, value)


def _check_request(
    k: object,
    category: object,
    max_per_category: object,
    exclude: object,
    include: object,
    **ids: object,
) -> None:
    """Check a list request's arguments as far as that needs no model: ``ids`` gives each
    id field its value (a tuple for several ids; ``None`` for none)."""
    for field, value in ids.items():
        for one in value if isinstance(value, tuple) else (value,):
            if one is not None:
                _checked(field, one)
    _positive("k", k)
    _positive("max_per_category", max_per_category, optional=True)
    if category is not None:
        _checked("category", category)
    _ids("exclude", exclude)
    _ids("include", include)


def _positive(field: str, value: object, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    return checked_int(field, value, minimum=1)


def _seconds(field: str, value: object) -> float | None:
    """An optional interval: ``None``, or a positive number of seconds."""
    return None if value is None else checked_number(field, value, above=0)


def _default_model_path(store: EventStore) -> Path | None:
    url = store.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).with_name(Path(url.database).name + ".recsdk")


class Recommender:
    """Recommendations for a shop: track events, fit, and ask for lists.

    Parameters
    ----------
    url:
        The event store: a database URL (default: ``recsdk.db`` in the working directory)
        or an :class:`~recsdk.store.EventStore`.
    model:
        An unfitted :class:`~recsdk.engine.ItemSimilarity` to fit (its settings are
        used); the default is the engine's tuned default.
    model_path:
        Folder where :meth:`fit` saves the fitted state and where a new recommender loads
        it from. Default: ``<database file>.recsdk`` beside a SQLite file; none for other
        databases (give one to share a fitted state between processes).
    autosave:
        Save after every :meth:`fit` and :meth:`refresh` (when there is a ``model_path``).
    load:
        Load the saved state, if any, when the recommender is made.
    cache_ttl, cache_size:
        Seconds an answer (and a shopper's history) is reused, and how many are kept.
        Tracking through the recommender invalidates a shopper's answers at once; events
        stored by other processes show within ``cache_ttl``.
    history_limit:
        The latest item events of a shopper read per request.
    catalog_only:
        Recommend only items described in the catalog (default: also items known only
        from events). Items the catalog marks unavailable are never recommended.
    category_boost:
        How much a shopper's preferred categories lift their items' scores
        (``score * (1 + boost * share)``, ``share`` the category's part of the shopper's
        history).
    trending_half_life_days:
        Half-life of trending scores.
    refit_every:
        Seconds between background :meth:`refresh` calls (``None``: none).
    reload_every:
        Seconds between background :meth:`reload` calls, for web workers that serve the
        state another process fits and saves (``None``: none).
    """

    def __init__(
        self,
        url: str | sa.URL | EventStore = "sqlite:///recsdk.db",
        *,
        model: ItemSimilarity | None = None,
        model_path: str | os.PathLike[str] | None = None,
        autosave: bool = True,
        load: bool = True,
        cache_ttl: float = 30.0,
        cache_size: int = 100_000,
        history_limit: int = 500,
        catalog_only: bool = False,
        category_boost: float = 0.2,
        trending_half_life_days: float = 7.0,
        refit_every: float | None = None,
        reload_every: float | None = None,
    ) -> None:
        if model is not None and not isinstance(model, ItemSimilarity):
            raise ValidationError("model", f"must be an ItemSimilarity, not {model!r}")
        cache_ttl = checked_number("cache_ttl", cache_ttl, above=0)
        cache_size = checked_int("cache_size", cache_size, minimum=1)
        history_limit = checked_int("history_limit", history_limit, minimum=1)
        category_boost = checked_number("category_boost", category_boost, minimum=0)
        trending_half_life_days = checked_number(
            "trending_half_life_days", trending_half_life_days, above=0
        )
        refit_every = _seconds("refit_every", refit_every)
        reload_every = _seconds("reload_every", reload_every)
        self._owns_store = not isinstance(url, EventStore)
        self.store = url if isinstance(url, EventStore) else EventStore(url)
        self._options = FitOptions(
            model=model if model is not None else ItemSimilarity(),
            trending_half_life_days=trending_half_life_days,
            catalog_only=catalog_only,
        )
        given = Path(model_path) if model_path is not None else None
        self.model_path = given or _default_model_path(self.store)
        self.autosave = autosave
        self._warned_unsaved = False
        self.history_limit = history_limit
        self.category_boost = category_boost
        self._caches = Caches(cache_size, cache_ttl)
        self._state: ServingState | None = None
        self._version: str | None = None
        self._generation = 0
        self._fit_lock = threading.RLock()
        self._baskets = Baskets()
        self._users = UserDirectory()
        self._owners: dict[str, str] = {}  # anonymous id -> user id, as seen here
        self._visitors: dict[str, set[str]] = {}  # user id -> anonymous ids
        self._periodic = [
            Periodic(name, every, task)
            for name, every, task in (
                ("refresh", refit_every, self.refresh),
                ("reload", reload_every, self.reload),
            )
            if every is not None
        ]
        if load and self.model_path is not None:
            self._load_saved()
        self._keep_background_running()

    def __repr__(self) -> str:
        state = describe(self._state) if self._state is not None else "not fitted"
        return f"Recommender({self.store!r}, {state})"

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop background tasks and, if the recommender opened it, close the store."""
        for task in self._periodic:
            task.stop()
        if self._owns_store:
            self.store.close()

    # -- tracking ------------------------------------------------------------------------

    def track(self, type: str, **fields: Any) -> Event:
        """Store one event now and return it; the shopper's next lists take it into account.

        ``fields`` are those of :class:`~recsdk.events.Event` (``user_id``, ``item_id``,
        ``order_id``, ``price``, ``timestamp``...).

        Raises
        ------
        InvalidEvent
            Naming the field, if the event is not valid; nothing is stored then.
        """
        self._keep_background_running()
        event = Event.from_dict({"type": type, **fields})
        self.store.add(event)
        self._forget_shoppers([event])
        return event

    def track_many(self, events: Iterable[Event | Mapping[str, Any]]) -> AddResult:
        """Store a batch of events (Events or wire-format dicts) in one transaction.

        Raises
        ------
        InvalidEvent
            If any event is invalid, naming its position and field; nothing is stored.
        """
        self._keep_background_running()
        valid: list[Event] = []
        for position, event in enumerate(events):
            if isinstance(event, Event):
                valid.append(event)
                continue
            try:
                valid.append(Event.from_dict(event))
            except InvalidEvent as error:
                raise InvalidEvent(error.field, f"event {position}: {error.reason}") from None
        result = self.store.add_many(valid)
        self._forget_shoppers(valid)
        return result

    def identify(self, anonymous_id: str, user_id: str) -> bool:
        """Link a visitor to the user they logged in as: their histories become one.

        Returns whether the link is new (the first link of an anonymous id wins).
        """
        made = self.store.link_identity(anonymous_id, user_id)
        self._note_link(anonymous_id, user_id)
        self.invalidate(user_id=user_id, anonymous_id=anonymous_id)
        return made

    def invalidate(self, user_id: str | None = None, anonymous_id: str | None = None) -> None:
        """Forget the cached history and lists of a shopper (and of their linked ids).

        Tracking through the recommender does this itself; call it when events reach the
        store another way in this process.
        """
        self._caches.invalidate(*self._linked(user_id, anonymous_id))

    def _linked(self, user_id: str | None, anonymous_id: str | None) -> tuple[set[str], set[str]]:
        """A shopper's user ids and anonymous ids, with the links this process has seen."""
        users = {user_id} if user_id is not None else set()
        visitors = {anonymous_id} if anonymous_id is not None else set()
        for visitor in list(visitors):
            owner = self._owners.get(visitor)
            if owner is not None:
                users.add(owner)
        for user in users:
            visitors.update(self._visitors.get(user, ()))
        return users, visitors

    def clear_cache(self) -> None:
        """Forget every cached history and list (they are read and made again on demand)."""
        self._caches.clear()

    def _forget_shoppers(self, events: Sequence[Event]) -> None:
        for event in events:
            if event.user_id is not None and event.anonymous_id is not None:
                self._note_link(event.anonymous_id, event.user_id)
        shoppers = {(e.user_id, e.anonymous_id) for e in events}
        for user_id, anonymous_id in shoppers:
            self.invalidate(user_id, anonymous_id)

    def _note_link(self, anonymous_id: str, user_id: str) -> None:
        if len(self._owners) > _LINKS_LIMIT:
            self._owners.clear()
            self._visitors.clear()
        self._owners.setdefault(anonymous_id, user_id)
        self._visitors.setdefault(self._owners[anonymous_id], set()).add(anonymous_id)

    def upsert_items(self, items: Iterable[Any]) -> int:
        """Add or update catalog items (see :meth:`EventStore.upsert_items`); served at once.

        Returns the number of items written.
        """
        written = self.store.upsert_items(items)
        with self._fit_lock:
            if self._state is not None:
                self._swap(with_catalog(self._serving(), self.store, self._options, self._next()))
        return written

    # -- privacy ---------------------------------------------------------------------------

    def export_user(
        self, user_id: str | None = None, *, anonymous_id: str | None = None
    ) -> ShopperData:
        """Everything the store holds about one shopper (:meth:`EventStore.export_user`);
        ``.to_dict()`` makes it JSON-ready."""
        return self.store.export_user(user_id, anonymous_id=anonymous_id)

    def erase_user(self, user_id: str | None = None, *, anonymous_id: str | None = None) -> int:
        """Delete one shopper's events and identity links (:meth:`EventStore.erase_user`);
        return how many events.

        Their cached lists are dropped, so their next lists come from an empty history at
        once. The fitted models forget their events at the next :meth:`refresh` (or the
        periodic one), which fits afresh after any erasure, in any process, as
        :meth:`recommend_many` does first; call :meth:`fit` to make them forget now.
        """
        user_id, anonymous_id = _shopper_key(user_id, anonymous_id)
        # Every id of the person, also those linked by other processes, for the caches.
        known_user, known_visitors = self.store.shopper_ids(user_id, anonymous_id=anonymous_id)
        erased = self.store.erase_user(user_id, anonymous_id=anonymous_id)
        users, visitors = self._linked(user_id, anonymous_id)
        if known_user is not None:
            users.add(known_user)
        visitors.update(known_visitors)
        self._caches.invalidate(users, visitors)
        for visitor in visitors:
            self._owners.pop(visitor, None)
        for user in users:
            self._visitors.pop(user, None)
        return erased

    def erase_before(self, moment: datetime | str | float) -> int:
        """Delete every event older than ``moment`` (:meth:`EventStore.erase_before`, for a
        retention period); return how many. Cached lists are dropped; the models forget
        those events at the next :meth:`refresh`, which fits afresh."""
        erased = self.store.erase_before(moment)
        if erased:
            self._caches.clear()
        return erased

    # -- fitting ---------------------------------------------------------------------------

    def fit(self) -> Recommender:
        """Read every event and fit every model; serve the result (and save it).

        Requests keep being answered from the previous state until the new one swaps in.
        """
        self._keep_background_running()
        with self._fit_lock:
            state = fit_state(self.store, self._options, self._baskets, self._next())
            self._swap(state)
            self._autosave()
        return self

    def fit_in_background(self) -> Future[Recommender]:
        """:meth:`fit` in a new thread; the future completes when the new state is served."""
        future: Future[Recommender] = Future()

        def run() -> None:
            try:
                future.set_result(self.fit())
            except BaseException as error:  # handed to the caller through the future
                future.set_exception(error)

        threading.Thread(target=run, name="recsdk-fit", daemon=True).start()
        return future

    def refresh(self) -> Recommender:
        """Update the models with the events stored since the last fit (incrementally).

        Uses the engine's ``partial_fit``; trending scores, bought-together baskets, new
        items and catalog changes are brought up to date too. Fits when nothing was fitted.
        """
        with self._fit_lock:
            if self._state is None:
                return self.fit()
            state = refreshed_state(
                self._state, self.store, self._options, self._baskets, self._next()
            )
            self._swap(state)
            self._autosave()
        return self

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save the fitted state (to ``model_path`` by default); return the folder."""
        folder = Path(path) if path is not None else self.model_path
        if folder is None:
            raise ValueError("give a path: this recommender has no model_path")
        with self._fit_lock:
            self._version = save_state(self._serving(), folder)
        return folder

    def reload(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Serve the state saved in ``path`` (``model_path`` by default) if it is newer.

        Returns whether a state was loaded. Arrays are memory-mapped: processes loading
        the same files share them.
        """
        folder = Path(path) if path is not None else self.model_path
        if folder is None:
            raise ValueError("give a path: this recommender has no model_path")
        with self._fit_lock:
            if path is None and current_version(folder) in (None, self._version):
                return False
            loaded = load_state(folder, self.store, self._options, self._next())
            if loaded is None:
                return False
            state, self._version = loaded
            self._swap(state)
        return True

    def warmup(self) -> Recommender:
        """Pay one-time costs now, off the request path: JIT compiles, the content index.

        Before any fit it compiles the kernels that fitting, refreshing and serving will
        run, so that the first :meth:`fit` and :meth:`refresh` compile nothing either.
        """
        if self._state is None:
            self._options.model.warmup()
            return self
        state = self._serving()
        if state.similarity is not None:
            state.similarity.warmup()
        state.content()
        self.trending(k=1)
        first = next((ix for ix, name in enumerate(state.items.ids) if name), None)
        if first is not None:
            self.similar_items(state.items.ids[first], k=1)
            self.bought_together(state.items.ids[first], k=1)
        return self

    def _load_saved(self) -> None:
        """Serve the saved state, if any. A state that cannot be read is logged, not
        raised: the web worker starts, unfitted, and a later fit or reload serves."""
        try:
            self.reload()
        except Exception:
            log.exception(
                "recsdk recommender: could not load the state saved in %s; not fitted",
                self.model_path,
            )

    def _autosave(self) -> None:
        if not self.autosave:
            return
        if self.model_path is None:
            if not self._warned_unsaved:
                self._warned_unsaved = True
                log.warning(
                    "recsdk recommender: the fitted state is not saved: %s is no SQLite file, "
                    "so give Recommender(model_path=...) for other processes to load it",
                    self.store.url.render_as_string(hide_password=True),
                )
            return
        self._version = save_state(self._serving(), self.model_path)

    def _next(self) -> int:
        self._generation += 1
        return self._generation

    def _swap(self, state: ServingState) -> None:
        self._state = state  # one reference assignment: requests see the old or the new
        self._caches.clear()
        log.info("recsdk recommender: serving %s", describe(state))

    def _keep_background_running(self) -> None:
        """Start the periodic tasks in this process, if they do not run here yet: at
        first, and again in a forked web worker on its first call."""
        for task in self._periodic:
            task.ensure()

    def _serving(self, check: Callable[[], object] | None = None) -> ServingState:
        """The state being served (raises :class:`~recsdk.errors.NotFitted` before any).

        Before any, ``check`` validates the caller's arguments first: a bad argument is
        named whether or not a model is fitted (a web app answers it as the client's).
        """
        self._keep_background_running()
        state = self._state
        if state is None:
            if check is not None:
                check()
            raise NotFitted("call fit() first, or save() a fitted recommender to load it")
        return state

    # -- lists -----------------------------------------------------------------------------

    def recommend(
        self,
        user_id: str | None = None,
        k: int = 10,
        *,
        anonymous_id: str | None = None,
        category: str | None = None,
        exclude: str | Iterable[str] | None = None,
        include: str | Iterable[str] | None = None,
        exclude_purchased: bool = True,
        exclude_viewed: bool = False,
        max_per_category: int | None = None,
    ) -> Recommendations:
        """The ``k`` items a shopper is most likely to want next, each with its reason.

        The shopper's latest events are read from the store (then cached), so events
        tracked since the last fit count at once. A shopper with no history (or no id) gets
        trending items. Exactly ``k`` items come back when ``k`` items are allowed.

        Parameters
        ----------
        user_id, anonymous_id:
            The shopper: a logged-in user, an anonymous visitor, or both (their histories
            are merged, as they are once linked).
        k:
            How many items.
        category:
            Only items of this category (trending in it for a shopper without history).
        exclude, include:
            Item ids never to return / the only ones that may be returned.
        exclude_purchased, exclude_viewed:
            Leave out what the shopper bought (default) / everything they interacted with.
        max_per_category:
            At most this many items of one category, while others can fill the list.
        """
        key = _shopper_key(user_id, anonymous_id)
        user_id, anonymous_id = key
        shopper = {"user_id": user_id, "anonymous_id": anonymous_id}
        state = self._serving(
            lambda: _check_request(k, category, max_per_category, exclude, include, **shopper)
        )
        options: Hashable = (
            k, category, _ids("exclude", exclude), _ids("include", include), exclude_purchased,
            exclude_viewed, max_per_category,
        )  # fmt: skip
        entry = self._caches.shopper(key, state.generation)
        found = entry.lists.get(options) if entry is not None else None
        if found is None:
            self._check_shopper(user_id, anonymous_id)
            if entry is None:
                entry = self._shopper(state, key)
            history = entry.history
            blocked = [history.bought if exclude_purchased else None]
            blocked.append(history.seen if exclude_viewed else None)
            rules = self._rules(state, k, category, exclude, include, max_per_category, blocked)
            if entry.share is None:
                entry.share = state.collaborative_share(history.items)
            picks = lists.personal(state, history, entry.share, rules, self.category_boost)
            found = render(state, picks)
            entry.lists[options] = found
        return Recommendations(found, kind="recommend")

    def recommend_many(
        self,
        user_ids: Iterable[str] | None = None,
        k: int = 10,
        *,
        exclude_purchased: bool = True,
        exclude_viewed: bool = False,
    ) -> RecommendationBatch:
        """:meth:`recommend` for many users at once (default: every user), in parallel.

        Histories come from the fitted model (as of the last fit or refresh), so no
        per-user query is made; this is the path for e-mail campaigns and precomputation.
        When events were erased since the model was fitted, it refreshes first (a full
        fit), so that no list is made from erased events.
        """
        _positive("k", k)
        names = (
            None
            if user_ids is None
            else [_checked("user_ids", u) for u in _ids("user_ids", user_ids)]
        )
        if self.store.erasure_mark() != self._serving().erasures:
            self.refresh()
        return recommend_batch(
            self._serving(), self.store, self._users, names, k, exclude_purchased,
            exclude_viewed, self.category_boost,
        )  # fmt: skip

    def similar_items(
        self,
        item_id: str,
        k: int = 10,
        *,
        category: str | None = None,
        exclude: str | Iterable[str] | None = None,
        include: str | Iterable[str] | None = None,
        max_per_category: int | None = None,
    ) -> Recommendations:
        """The ``k`` items most like ``item_id`` (never itself), each with its reason.

        Items few shoppers touched yet are matched by catalog content (category, tags,
        title words), blended with shoppers' co-occurrence as it accumulates. An item the
        store has never seen gets trending items.
        """
        state = self._serving(
            lambda: _check_request(k, category, max_per_category, exclude, include, item_id=item_id)
        )
        key = ("similar", state.generation, item_id, k, category, _ids("exclude", exclude),
               _ids("include", include), max_per_category)  # fmt: skip
        found = self._caches.get_list(key)
        if found is None:
            item = _checked("item_id", item_id)
            ix = state.items.index.get(item)
            also = () if ix is None else (ix,)
            rules = self._rules(state, k, category, exclude, include, max_per_category, [], *also)
            found = render(state, lists.similar_items(state, ix, rules))
            self._caches.put_list(key, found)
        return Recommendations(found, kind="similar_items")

    def bought_together(
        self,
        item_ids: str | Sequence[str],
        k: int = 5,
        *,
        category: str | None = None,
        exclude: str | Iterable[str] | None = None,
        include: str | Iterable[str] | None = None,
        max_per_category: int | None = None,
    ) -> Recommendations:
        """Items often bought with ``item_ids`` (one item, or a basket), then similar ones.

        Never returns an item of the basket.
        """
        basket_ids = _ids("item_ids", item_ids)
        if not basket_ids:
            raise ValidationError("item_ids", "give at least one item id")
        state = self._serving(
            lambda: _check_request(
                k, category, max_per_category, exclude, include, item_ids=basket_ids
            )
        )
        key = ("together", state.generation, basket_ids, k, category, _ids("exclude", exclude),
               _ids("include", include), max_per_category)  # fmt: skip
        found = self._caches.get_list(key)
        if found is None:
            names = [_checked("item_ids", name) for name in basket_ids]
            basket = [state.items.index[n] for n in names if n in state.items.index]
            rules = self._rules(state, k, category, exclude, include, max_per_category, [], *basket)
            found = render(state, lists.bought_together(state, basket, rules))
            self._caches.put_list(key, found)
        return Recommendations(found, kind="bought_together")

    def trending(
        self,
        k: int = 10,
        *,
        category: str | None = None,
        exclude: str | Iterable[str] | None = None,
        include: str | Iterable[str] | None = None,
    ) -> Recommendations:
        """The ``k`` items trending now (time-decayed popularity), overall or in a category."""
        state = self._serving(lambda: _check_request(k, category, None, exclude, include))
        key = ("trending", state.generation, k, category, _ids("exclude", exclude),
               _ids("include", include))  # fmt: skip
        found = self._caches.get_list(key)
        if found is None:
            rules = self._rules(state, k, category, exclude, include, None, [])
            found = render(state, lists.trending(state, rules))
            self._caches.put_list(key, found)
        return Recommendations(found, kind="trending")

    def profile(
        self, user_id: str | None = None, *, anonymous_id: str | None = None
    ) -> UserProfile:
        """Recency, frequency, monetary value and preferred categories of a shopper."""
        key = _shopper_key(user_id, anonymous_id)
        self._check_shopper(*key)
        state = self._serving()
        entry = self._caches.shopper(key, state.generation) or self._shopper(state, key)
        return user_profile(entry.history, state.items)

    # -- helpers ----------------------------------------------------------------------------

    def _check_shopper(self, user_id: str | None, anonymous_id: str | None) -> None:
        if user_id is not None:
            _checked("user_id", user_id)
        if anonymous_id is not None:
            _checked("anonymous_id", anonymous_id)

    def _shopper(self, state: ServingState, key: ShopperKey) -> ShopperEntry:
        """Read a shopper's history from the store and cache it."""
        ticket = self._caches.ticket()
        user_id, anonymous_id = key
        history: History
        if user_id is None and anonymous_id is None:
            history = read_history([], state.weights, state.items)
        else:
            rows = self.store.item_event_rows(
                user_id, anonymous_id=anonymous_id, limit=self.history_limit
            )
            history = read_history(rows, state.weights, state.items)
        entry = ShopperEntry(state.generation, history)
        self._caches.put_shopper(key, entry, ticket)
        return entry

    def _rules(
        self,
        state: ServingState,
        k: object,
        category: str | None,
        exclude: str | Iterable[str] | None,
        include: str | Iterable[str] | None,
        max_per_category: object,
        blocked: list[npt.NDArray[np.int32] | None],
        *also_blocked: int,
    ) -> Rules:
        """Validate a request's options and turn item ids into indices."""
        count = _positive("k", k)
        assert count is not None
        cap = _positive("max_per_category", max_per_category, optional=True)
        index = state.items.index
        excluded = [index[n] for n in _ids("exclude", exclude) if n in index]
        parts = [np.asarray([*excluded, *also_blocked], dtype=np.int32)]
        parts += [b for b in blocked if b is not None]
        allowed = None
        if include is not None:
            names = _ids("include", include)
            allowed = np.unique(np.asarray([index[n] for n in names if n in index], np.int32))
        code = None
        if category is not None:
            code = state.items.category_codes.get(_checked("category", category), NO_SUCH_CATEGORY)
        return Rules(
            k=count,
            blocked=np.unique(np.concatenate(parts)).astype(np.int32),
            include=allowed,
            category=code,
            max_per_category=cap,
        )
