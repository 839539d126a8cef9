"""The event store: events in, interaction arrays and histories out, on SQLAlchemy Core.

One embedded SQLite file by default; PostgreSQL, MySQL or MariaDB by URL, with the same API.
Writes are idempotent (a repeated ``event_id`` is stored once) and atomic (a failed batch
stores nothing). Strings are interned to integer ids on the way in, so the engine can read
interactions as compact numpy arrays, incrementally, from a watermark.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Final, cast

import attrs
import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from recsdk.catalog import CatalogItem, _validated_fields
from recsdk.errors import (
    InvalidEvent,
    SchemaMismatch,
    StoreError,
    ValidationError,
    checked_int,
)
from recsdk.events import (
    BUILTIN_TYPE_CODES,
    Event,
    TypeCode,
    check_id,
    parse_timestamp,
    type_code,
)
from recsdk.store import serving
from recsdk.store import tables as t
from recsdk.store.dialects import insert_skipping_duplicates, upsert
from recsdk.store.engines import WRITE, create_store_engine, normalize_url
from recsdk.store.results import (
    AddResult,
    BasketRow,
    HistoryEntry,
    Interactions,
    ItemEventRow,
    Rejected,
    ShopperData,
    StoreCounts,
)

__all__ = ["EventStore"]

_CHUNK: Final = 5_000  # events per INSERT round trip and per interning step
_LOOKUP_CHUNK: Final = 500  # ids per "IN (...)" list
_CACHE_LIMIT: Final = 500_000  # interned ids remembered per kind before starting over
_PARALLEL_READ_MIN: Final = 200_000  # rows from which interactions() reads in parallel
_ERASE_CHUNK: Final = 50_000  # rows, by id, that erase_before() deletes per transaction

_EVENT_COLUMNS: Final = (  # the order of _event_rows' tuples
    "event_id",
    "type",
    "user_ix",
    "item_ix",
    "ts",
    "received_at",
    "custom_type",
    "anonymous_ix",
    "quantity",
    "price",
    "currency",
    "value",
    "order_id",
    "session_id",
    "rec_id",
    "properties",
    "context",
)
# Most events (views, clicks, pages) fill only these columns. SQLite's driver spends
# about a microsecond binding a parameter, even a NULL, so such events go through an
# INSERT of just these, and the batch's received_at is written into its SQL text.
_LEAN_COLUMNS: Final = _EVENT_COLUMNS[:5]


def _sqlite_insert(columns: Sequence[str]) -> str:
    return (
        f"INSERT OR IGNORE INTO {t.events.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )


_SQLITE_INSERT_EVENTS: Final = _sqlite_insert(_EVENT_COLUMNS)


def _sqlite_insert_lean(received_at: int) -> str:
    return (
        f"INSERT OR IGNORE INTO {t.events.name} ({', '.join(_LEAN_COLUMNS)}, received_at) "
        f"VALUES ({', '.join('?' * len(_LEAN_COLUMNS))}, {int(received_at)})"
    )


_SQLITE_READ_INTERACTIONS: Final = (
    "SELECT group_concat(user_ix), group_concat(item_ix), group_concat(type), "
    "group_concat(ts), group_concat(coalesce(value, quantity, 1)) "
    f"FROM {t.events.name} WHERE id > ? AND id <= ? AND item_ix IS NOT NULL"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _from_ms(millis: int) -> datetime:
    seconds, rest = divmod(int(millis), 1000)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).replace(microsecond=rest * 1000)


def _json_or_none(mapping: Mapping[str, Any]) -> str | None:
    return json.dumps(mapping, ensure_ascii=False, separators=(",", ":")) if mapping else None


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@attrs.define(eq=False)
class _IdSpace:
    """One kind of interned id: user ids, anonymous ids or item ids.

    ``known`` caches committed ids, which never change; ids a transaction reads or makes
    join it only once that transaction commits.
    """

    table: sa.Table
    insert: sa.Insert
    anonymous: bool | None  # the users table holds both kinds; None for items
    known: dict[str, int] = attrs.field(factory=dict)

    def remember(self, ids: Mapping[str, int]) -> None:
        if len(self.known) + len(ids) > _CACHE_LIMIT:
            self.known.clear()
        self.known.update(ids)


class _Readers:
    """One SQLite driver connection per thread for request-time reads, made on first use.

    Each is taken out of the engine's pool once (``detach``), so it has the store's
    pragmas but is never shared; a forked child makes its own.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    def connection(self) -> Any:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            pooled = self._engine.raw_connection()
            pooled.detach()
            local.connection = pooled.dbapi_connection
            local.pid = os.getpid()
            with self._lock:
                self._open.append(local.connection)
        return local.connection

    def close(self) -> None:
        with self._lock:
            connections, self._open = self._open, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # another thread's connection may be in use; it is dropped
                continue


@attrs.define
class _Transaction:
    """An open write transaction and the ids it interned, by id space."""

    conn: sa.Connection
    interned: dict[_IdSpace, dict[str, int]] = attrs.field(factory=dict)

    def note(self, space: _IdSpace, ids: Mapping[str, int]) -> None:
        self.interned.setdefault(space, {}).update(ids)


class EventStore:
    """Events, the catalog and identity links in a SQL database.

    Parameters
    ----------
    url:
        A SQLAlchemy database URL. The default is a ``recsdk.db`` SQLite file in the working
        directory; ``postgresql://...`` uses psycopg 3 and ``mysql://...`` /
        ``mariadb://...`` use PyMySQL unless the URL names another driver.
    create:
        Create the tables when the database has none yet (the default). With ``False``, a
        database without them raises :class:`~recsdk.errors.StoreError`. Either way, a
        database of an older schema version gains the tables added since (see
        ``tables.ADDED_IN``).
    busy_timeout:
        Seconds a SQLite writer waits for another process's write to finish.
    echo:
        Log every SQL statement (SQLAlchemy's ``echo``).

    Raises
    ------
    SchemaMismatch
        If the database holds tables of a recsdk schema version this version does not know.
    """

    def __init__(
        self,
        url: str | sa.URL = "sqlite:///recsdk.db",
        *,
        create: bool = True,
        busy_timeout: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self._engine = create_store_engine(self.url, busy_timeout=busy_timeout, echo=echo)
        dialect = self._engine.dialect
        self._sqlite = dialect.name == "sqlite"
        self._insert_events = insert_skipping_duplicates(t.events, dialect)
        self._insert_links = insert_skipping_duplicates(t.identity_links, dialect)
        insert_user = insert_skipping_duplicates(t.users, dialect)
        self._users = _IdSpace(t.users, insert_user, anonymous=False)
        self._visitors = _IdSpace(t.users, insert_user, anonymous=True)
        self._items = _IdSpace(t.items, insert_skipping_duplicates(t.items, dialect), None)
        self._readers = _Readers(self._engine) if self._sqlite else None
        self._closed = False
        try:
            self._prepare_schema(create)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"EventStore({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's database connections; using the store afterwards raises
        :class:`~recsdk.errors.StoreError`."""
        self._closed = True
        if self._readers is not None:
            self._readers.close()
        self._engine.dispose()

    @property
    def engine(self) -> sa.Engine:
        """The store's own SQLAlchemy engine."""
        return self._engine

    # -- schema -----------------------------------------------------------------------

    def _prepare_schema(self, create: bool) -> None:
        try:
            self._check_or_create_schema(create)
        except sa.exc.DBAPIError:
            # Another process may have created the tables at the same moment; look again.
            self._check_or_create_schema(create=False, again=True)

    def _check_or_create_schema(self, create: bool, again: bool = False) -> None:
        with self._write() as conn:
            if sa.inspect(conn).has_table(t.schema_version.name):
                versions = conn.scalars(sa.select(t.schema_version.c.version)).all()
                if versions == [t.SCHEMA_VERSION]:
                    return
                if len(versions) == 1 and 1 <= versions[0] < t.SCHEMA_VERSION:
                    self._upgrade(conn, versions[0], again)
                    return
                raise SchemaMismatch(
                    f"the database at {self!r} has recsdk schema version "
                    f"{max(versions, default='none')}; this recsdk knows version "
                    f"{t.SCHEMA_VERSION}. Use the recsdk version that created it."
                )
            if not create:
                raise StoreError(f"the database at {self!r} has no recsdk tables")
            t.metadata.create_all(conn)
            conn.execute(
                t.schema_version.insert(),
                {"version": t.SCHEMA_VERSION, "installed_at": _now_ms()},
            )

    def _upgrade(self, conn: sa.Connection, version: int, again: bool) -> None:
        try:
            _migrate(conn, version)
        except sa.exc.DBAPIError as error:
            if not again:
                raise  # maybe another process migrating at the same moment: look again
            raise SchemaMismatch(
                f"the database at {self!r} has recsdk schema version {version}, and "
                f"upgrading it to version {t.SCHEMA_VERSION} failed ({error.orig}): open it "
                f"once as a database user allowed to create tables"
            ) from error

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._connect() as conn:
            conn.execution_options(**WRITE)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self._connect() as conn, conn.begin():
            yield conn

    def _connect(self) -> sa.Connection:
        self._check_open()
        return self._engine.connect()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self!r} is closed")

    # -- writing events ---------------------------------------------------------------

    def add(self, event: Event | Mapping[str, Any]) -> bool:
        """Store one event; return False if its ``event_id`` was stored before.

        Raises
        ------
        InvalidEvent
            If ``event`` is a dict that is not a valid event.
        """
        if not isinstance(event, Event):
            event = Event.from_dict(event)
        return self.add_many([event]).inserted == 1

    def add_many(
        self,
        events: Iterable[Event | Mapping[str, Any]],
        *,
        report_duplicates: bool = False,
    ) -> AddResult:
        """Store a batch of events, each exactly once, in one transaction.

        Dicts are validated first: invalid ones are reported in ``rejected`` and not stored,
        while the valid ones beside them are. An event whose ``event_id`` is already stored,
        or repeated within the batch, is counted in ``duplicates`` and stored once. If the
        database fails, nothing of the batch is stored and the error is raised.

        With ``report_duplicates``, ``duplicate_indices`` also says which events were
        duplicates, at the cost of one look-up per batch (the collector answers per event).
        On SQLite this is exact; elsewhere an event stored by another writer at the same
        moment may be reported as inserted, which it then was, once.
        """
        if isinstance(events, (Event, Mapping, str)):
            raise ValidationError("events", "must be a list of events; use add() for one")
        valid: list[Event] = []
        positions: list[int] = []
        rejected: list[Rejected] = []
        for index, event in enumerate(events):
            if not isinstance(event, Event):
                try:
                    event = Event.from_dict(event)
                except InvalidEvent as error:
                    rejected.append(Rejected(index, error))
                    continue
            valid.append(event)
            positions.append(index)
        if not valid:
            return AddResult(0, 0, tuple(rejected))
        inserted, duplicates = self._insert(valid, report_duplicates)
        return AddResult(
            inserted,
            len(valid) - inserted,
            tuple(rejected),
            tuple(positions[i] for i in duplicates),
        )

    def _insert(self, events: Sequence[Event], find_duplicates: bool) -> tuple[int, list[int]]:
        """Store valid events; return how many were new and, if asked, which were not."""
        received_at = _now_ms()
        inserted = 0
        duplicates: list[int] = []
        seen: set[str] = set()
        with self._transaction() as tx:
            for start in range(0, len(events), _CHUNK):
                chunk = events[start : start + _CHUNK]
                if find_duplicates:
                    stored = self._stored_event_ids(tx.conn, chunk)
                    for offset, event in enumerate(chunk):
                        if event.event_id in stored or event.event_id in seen:
                            duplicates.append(start + offset)
                        seen.add(event.event_id)
                users = self._intern(tx, self._users, {e.user_id for e in chunk})
                visitors = self._intern(tx, self._visitors, {e.anonymous_id for e in chunk})
                items = self._intern(tx, self._items, {e.item_id for e in chunk})
                lean, full = _event_rows(chunk, users, visitors, items, received_at)
                inserted += self._insert_event_rows(tx.conn, lean, full, received_at)
                links: dict[int, int] = {}
                for e in chunk:  # the first link of a visitor wins, within a batch too
                    if e.user_id is not None and e.anonymous_id is not None:
                        links.setdefault(visitors[e.anonymous_id], users[e.user_id])
                if links:
                    self._write_links(tx.conn, links, received_at)
        return inserted, duplicates

    def _stored_event_ids(self, conn: sa.Connection, events: Sequence[Event]) -> set[str]:
        wanted = [_uuid_bytes(e.event_id) for e in events]
        stored: set[str] = set()
        for chunk in _chunks(wanted, _LOOKUP_CHUNK):
            query = sa.select(t.events.c.event_id).where(t.events.c.event_id.in_(chunk))
            stored.update(_uuid_from_bytes(raw) for raw in conn.scalars(query))
        return stored

    @contextmanager
    def _transaction(self) -> Iterator[_Transaction]:
        """A write transaction whose interned ids are cached once it has committed."""
        with self._write() as conn:
            tx = _Transaction(conn)
            yield tx
        for space in (self._users, self._visitors, self._items):
            space.remember(tx.interned.get(space, {}))

    def _insert_event_rows(
        self,
        conn: sa.Connection,
        lean: list[tuple[Any, ...]],
        full: list[tuple[Any, ...]],
        received_at: int,
    ) -> int:
        """Insert rows, skipping stored event ids; return how many were new."""
        if not self._sqlite:
            padding = (received_at,) + (None,) * (len(_EVENT_COLUMNS) - len(_LEAN_COLUMNS) - 1)
            named = [dict(zip(_EVENT_COLUMNS, row + padding, strict=True)) for row in lean]
            named += [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in full]
            return self._insert_counting(conn, self._insert_events, named)
        # The hot path: positional rows straight to the driver's executemany.
        inserted = 0
        if lean:
            inserted += conn.exec_driver_sql(_sqlite_insert_lean(received_at), lean).rowcount
        if full:
            inserted += conn.exec_driver_sql(_SQLITE_INSERT_EVENTS, full).rowcount
        return inserted

    def _insert_counting(
        self, conn: sa.Connection, insert: sa.Insert, rows: list[dict[str, Any]]
    ) -> int:
        """Run an insert that skips duplicates; return how many rows it inserted."""
        if conn.dialect.name == "postgresql":
            # psycopg reports no rowcount for a batch: count the keys it returns instead.
            keys = insert.table.primary_key.columns  # type: ignore[attr-defined]
            return len(conn.execute(insert.returning(*keys), rows).all())
        return conn.execute(insert, rows).rowcount

    def _write_links(self, conn: sa.Connection, links: Mapping[int, int], linked_at: int) -> int:
        rows = [
            {"anonymous_ix": anon, "user_ix": user, "linked_at": linked_at}
            for anon, user in sorted(links.items())
        ]
        return self._insert_counting(conn, self._insert_links, rows)

    def link_identity(self, anonymous_id: str, user_id: str) -> bool:
        """Record that the visitor ``anonymous_id`` is the user ``user_id``.

        From then on the visitor's events count as the user's, in histories and in
        :meth:`interactions`. The first link of an anonymous id wins; return whether this
        call made a new one. Events carrying both ids link them the same way.
        """
        user_id = check_id("user_id", user_id)
        anonymous_id = check_id("anonymous_id", anonymous_id)
        with self._transaction() as tx:
            user = self._intern(tx, self._users, {user_id})[user_id]
            visitor = self._intern(tx, self._visitors, {anonymous_id})[anonymous_id]
            made = self._write_links(tx.conn, {visitor: user}, _now_ms())
        return made == 1

    # -- privacy ----------------------------------------------------------------------

    def shopper_ids(
        self, user_id: str | None = None, *, anonymous_id: str | None = None
    ) -> tuple[str | None, tuple[str, ...]]:
        """Return one shopper's user id (or ``None``) and anonymous ids, as the store links
        them: the ids :meth:`export_user` and :meth:`erase_user` take together."""
        user_id, anonymous_id = _shopper_ids(user_id, anonymous_id)
        with self._read() as conn:
            subjects = self._subjects(conn, user_id, anonymous_id)
            return _person_ids(conn, subjects, user_id, anonymous_id)

    def export_user(
        self, user_id: str | None = None, *, anonymous_id: str | None = None
    ) -> ShopperData:
        """Return everything the store holds about one shopper: their ids and events.

        Give ``user_id`` or ``anonymous_id``. The shopper is the person whose
        :meth:`history` that is: a user with every anonymous id linked to them, or a visitor
        with the user they turned out to be, if any. Events come oldest first; an unknown
        shopper has none.
        """
        user_id, anonymous_id = _shopper_ids(user_id, anonymous_id)
        with self._read() as conn:
            subjects = self._subjects(conn, user_id, anonymous_id)
            ids = _person_ids(conn, subjects, user_id, anonymous_id)
            rows = conn.execute(
                _NAMED_EVENTS.where(t.events.c.user_ix.in_(subjects)).order_by(
                    t.events.c.ts, t.events.c.id
                )
            ).all()
            linked_at = _link_times(conn, subjects)
        return ShopperData(
            *ids,
            events=tuple(_event_from_row(row) for row in rows),
            received_at=tuple(_from_ms(row.received_at) for row in rows),
            linked_at=linked_at,
        )

    def erase_user(self, user_id: str | None = None, *, anonymous_id: str | None = None) -> int:
        """Delete every event of one shopper and their identity links; return how many events.

        The shopper is the person :meth:`export_user` exports; an anonymous id that was
        linked to a user erases that user too, so check who asks before calling this. The
        ids themselves stay in the store's dictionary of ids, without events or links:
        other processes may hold their integer index, and a shopper who comes back is
        counted afresh. Events of another user that carried one of the shopper's anonymous
        ids (a shared device) stay that user's. Each erasure is logged in
        ``recsdk_erasures`` (when, and how many events, never whose), which tells every
        recommender on the store to fit afresh.

        An event the shopper's tracker still retries after this is stored again, as new:
        stop tracking a shopper (consent withdrawn) before erasing them.
        """
        user_id, anonymous_id = _shopper_ids(user_id, anonymous_id)
        with self._write() as conn:
            person = self._subjects(conn, user_id, anonymous_id)
            if not person:
                return 0
            erased, unlinked = _erase_person(conn, person)
            if erased or unlinked:
                _log_erasure(conn, "shopper", erased)
        return erased

    def erase_before(self, moment: datetime | str | float) -> int:
        """Delete every event that happened before ``moment``; return how many (retention).

        ``moment`` is a datetime (naive means UTC), an ISO 8601 string or epoch seconds;
        an event's time is its ``timestamp``. The events are deleted in short transactions
        of a range of rows each, so that tracking goes on meanwhile; each one is logged in
        ``recsdk_erasures`` as it commits, like :meth:`erase_user`, so that an erasure
        stopped halfway still tells recommenders to fit afresh. Identity links made before
        ``moment`` go too where no event of their anonymous id is left; ids stay.
        """
        try:
            cutoff = _millis(parse_timestamp(moment))
        except InvalidEvent as error:
            raise ValidationError("moment", error.reason) from None
        e = t.events.c
        log_id: int | None = None
        erased = 0
        for lower, upper in self._id_ranges(e.id):
            with self._write() as conn:
                deleted = conn.execute(
                    sa.delete(t.events).where(e.id > lower, e.id <= upper, e.ts < cutoff)
                ).rowcount
                if deleted:
                    log_id = _log_erasure(conn, "before", deleted, log_id)
                    erased += deleted
        self._unlink_before(cutoff)
        return erased

    def erasure_mark(self) -> int:
        """A number that grows with every erasure (the ``erasures`` of
        :meth:`interactions`): a model fitted under a smaller one may hold erased events."""
        with self._read() as conn:
            return int(conn.scalar(_ERASURE_MARK) or 0)

    def _id_ranges(self, key: sa.Column[Any]) -> Iterator[tuple[int, int]]:
        """``(lower, upper]`` ranges of at most ``_ERASE_CHUNK`` values of an integer key."""
        with self._read() as conn:
            first, last = conn.execute(sa.select(sa.func.min(key), sa.func.max(key))).one()
        if first is None:
            return
        for lower in range(first - 1, last, _ERASE_CHUNK):
            yield lower, lower + _ERASE_CHUNK

    def _unlink_before(self, cutoff: int) -> None:
        """Delete the links made before ``cutoff`` whose anonymous id has no events left."""
        links = t.identity_links.c
        events_left = sa.exists().where(t.events.c.user_ix == links.anonymous_ix)
        for lower, upper in self._id_ranges(links.anonymous_ix):
            with self._write() as conn:
                conn.execute(
                    sa.delete(t.identity_links).where(
                        links.anonymous_ix > lower,
                        links.anonymous_ix <= upper,
                        links.linked_at < cutoff,
                        ~events_left,
                    )
                )

    # -- interning ids ----------------------------------------------------------------

    def _intern(
        self, tx: _Transaction, space: _IdSpace, names: Collection[str | None]
    ) -> dict[str, int]:
        """Return the integer id of each name, making ids for names not seen before."""
        known = space.known
        ids = {name: known[name] for name in names if name in known}
        missing = [name for name in names if name is not None and name not in ids]
        if not missing:
            return ids
        this_transaction = tx.interned.get(space, {})  # ids from the batch's earlier chunks
        ids.update({name: this_transaction[name] for name in missing if name in this_transaction})
        missing = [name for name in missing if name not in ids]
        if not missing:
            return ids
        found = self._select_ids(tx.conn, space, missing)
        # Numbered in sorted order, on every database (never a set's order, which changes
        # with the hash seed): the same events make the same indices, and the same ties.
        new = sorted(name for name in missing if name not in found)
        if new:
            found.update(self._make_ids(tx.conn, space, new))
        tx.note(space, found)
        ids.update(found)
        return ids

    def _make_ids(self, conn: sa.Connection, space: _IdSpace, names: list[str]) -> dict[str, int]:
        """Store names not stored yet and return their new ids."""
        table = space.table
        extra = () if space.anonymous is None else (space.anonymous,)
        if self._sqlite:
            # A SQLite writer holds the database lock (BEGIN IMMEDIATE), so it can number
            # the rows itself: one plain executemany, no RETURNING, no second look-up.
            first = (conn.scalar(sa.select(sa.func.max(table.c.id))) or 0) + 1
            ids = {name: first + offset for offset, name in enumerate(names)}
            columns = "id, external_id" + ("" if space.anonymous is None else ", anonymous")
            marks = ", ".join("?" * (2 + len(extra)))
            conn.exec_driver_sql(
                f"INSERT INTO {table.name} ({columns}) VALUES ({marks})",
                [(ix, name, *extra) for name, ix in ids.items()],
            )
            return ids
        # Elsewhere another writer may store the same names meanwhile: skip those, then
        # look all of them up. Sorted, so that concurrent writers lock rows in one order.
        keys = {} if space.anonymous is None else {"anonymous": space.anonymous}
        conn.execute(space.insert, [{"external_id": name, **keys} for name in sorted(names)])
        return self._select_ids(conn, space, names)

    def _select_ids(
        self, conn: sa.Connection, space: _IdSpace, names: Sequence[str]
    ) -> dict[str, int]:
        table = space.table
        found: dict[str, int] = {}
        for chunk in _chunks(names, _LOOKUP_CHUNK):  # an empty list queries nothing
            query = sa.select(table.c.external_id, table.c.id).where(table.c.external_id.in_(chunk))
            if space.anonymous is not None:
                query = query.where(table.c.anonymous == space.anonymous)
            found.update(conn.execute(query).all())
        return found

    # -- catalog ----------------------------------------------------------------------

    def upsert_items(self, items: Iterable[CatalogItem | Mapping[str, Any]]) -> int:
        """Add catalog items, or update the fields given of those already there.

        A dict updates only the fields it names (``{"item_id": "sku-1", "available": False}``
        marks one product sold out); a :class:`~recsdk.catalog.CatalogItem` updates all.
        The whole batch is validated before anything is written.

        Returns
        -------
        int
            The number of items written.

        Raises
        ------
        InvalidItem
            If any item is invalid; nothing is written then.
        """
        validated = [_validated_fields(item) for item in items]
        if not validated:
            return 0
        now = _now_ms()
        with self._transaction() as tx:
            ids = self._intern(tx, self._items, {row["item_id"] for row in validated})
            by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for fields in validated:
                row = _catalog_row(fields, ids[fields["item_id"]], now)
                by_columns.setdefault(tuple(sorted(row)), []).append(row)
            for columns, rows in by_columns.items():
                changed = [c for c in columns if c not in {"item_ix", "created_at"}]
                tx.conn.execute(upsert(t.catalog, tx.conn.dialect, "item_ix", changed), rows)
        return len(validated)

    def get_items(self, item_ids: Iterable[str]) -> dict[str, CatalogItem]:
        """Return the catalog entries of these item ids; ids not in the catalog are left out."""
        wanted = list(dict.fromkeys((item_ids,) if isinstance(item_ids, str) else item_ids))
        found: dict[str, CatalogItem] = {}
        query = sa.select(t.items.c.external_id, t.catalog).join(
            t.catalog, t.catalog.c.item_ix == t.items.c.id
        )
        with self._read() as conn:
            for chunk in _chunks(wanted, _LOOKUP_CHUNK):
                for row in conn.execute(query.where(t.items.c.external_id.in_(chunk))):
                    found[row.external_id] = _catalog_item(row)
        return found

    # -- reading events ---------------------------------------------------------------

    def history(
        self,
        user_id: str | None = None,
        *,
        anonymous_id: str | None = None,
        limit: int = 50,
        types: Iterable[str] | None = None,
    ) -> list[HistoryEntry]:
        """Return a user's latest item events, newest first.

        Give ``user_id`` or ``anonymous_id``. A user's history includes the events of the
        anonymous ids linked to them; an anonymous id that was linked gets its user's.
        ``types`` keeps only events of those types (one type may be given alone).
        """
        limit = checked_int("limit", limit, minimum=1)
        if isinstance(types, str):
            types = (types,)
        with self._read() as conn:
            subjects = self._subjects(conn, user_id, anonymous_id)
            if not subjects:
                return []
            query = (
                sa.select(
                    t.items.c.external_id, t.events.c.type, t.events.c.custom_type, t.events.c.ts
                )
                .join(t.items, t.items.c.id == t.events.c.item_ix)
                .where(t.events.c.user_ix.in_(subjects))
                .order_by(t.events.c.ts.desc(), t.events.c.id.desc())
                .limit(limit)
            )
            if types is not None:
                query = query.where(t.events.c.type.in_({int(type_code(name)) for name in types}))
            rows = conn.execute(query).all()
        return [
            HistoryEntry(item, custom or TypeCode(code).name, _from_ms(ts))
            for item, code, custom, ts in rows
        ]

    def _subjects(
        self, conn: sa.Connection, user_id: str | None, anonymous_id: str | None
    ) -> list[int]:
        """The user indices whose events make up this person's history."""
        if (user_id is None) == (anonymous_id is None):
            raise TypeError("give exactly one of user_id and anonymous_id")
        anonymous = user_id is None
        name = anonymous_id if anonymous else user_id
        ix = conn.scalar(
            sa.select(t.users.c.id).where(
                t.users.c.external_id == name, t.users.c.anonymous == anonymous
            )
        )
        if ix is None:
            return []
        if anonymous:
            owner = conn.scalar(
                sa.select(t.identity_links.c.user_ix).where(t.identity_links.c.anonymous_ix == ix)
            )
            if owner is None:
                return [ix]
            ix = owner
        linked = conn.scalars(
            sa.select(t.identity_links.c.anonymous_ix).where(t.identity_links.c.user_ix == ix)
        ).all()
        return [ix, *linked]

    def item_events(self, item_id: str, *, limit: int = 100) -> list[Event]:
        """Return the latest events about one item, newest first."""
        query = (
            _NAMED_EVENTS.where(t.items.c.external_id == item_id)
            .order_by(t.events.c.ts.desc(), t.events.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [_event_from_row(row) for row in rows]

    def interactions(self, since: int | None = None) -> Interactions:
        """Read user-item events as numpy arrays, all of them or those stored after ``since``.

        Parameters
        ----------
        since:
            The ``watermark`` of an earlier call: only events stored after it are read,
            which makes a refit after a few new events cheap.
        """
        lower = 0 if since is None else checked_int("since", since, minimum=0)
        with self._read() as conn:
            upper = conn.scalar(sa.select(sa.func.max(t.events.c.id))) or 0
            n_users = (conn.scalar(sa.select(sa.func.max(t.users.c.id))) or 0) + 1
            n_items = (conn.scalar(sa.select(sa.func.max(t.items.c.id))) or 0) + 1
            links = conn.execute(
                sa.select(t.identity_links.c.anonymous_ix, t.identity_links.c.user_ix)
            ).all()
            erasures = conn.scalar(_ERASURE_MARK) or 0
        if upper <= lower:
            return Interactions.empty(
                n_users, n_items, watermark=max(upper, lower), erasures=erasures
            )
        columns = self._read_interaction_columns(lower, upper)
        users = columns[0].astype(np.int32)
        if links:
            owners = np.arange(n_users, dtype=np.int32)
            anonymous, owner = np.array(links, dtype=np.int32).T
            owners[anonymous] = owner
            users = owners[users]
        return Interactions(
            users=users,
            items=columns[1].astype(np.int32),
            types=columns[2].astype(np.int8),
            timestamps=columns[3] / 1000.0,
            values=columns[4].astype(np.float32),
            watermark=upper,
            erasures=erasures,
            n_users=n_users,
            n_items=n_items,
        )

    def _read_interaction_columns(self, lower: int, upper: int) -> list[npt.NDArray[Any]]:
        if not self._sqlite:
            return self._read_interaction_rows(lower, upper)
        parts = 1
        if upper - lower >= _PARALLEL_READ_MIN and self.url.database not in (None, "", ":memory:"):
            parts = min(4, os.cpu_count() or 1)
        bounds = np.linspace(lower, upper, parts + 1).astype(np.int64).tolist()
        ranges = list(itertools.pairwise(bounds))
        if parts == 1:
            pieces = [self._read_sqlite_range(*ranges[0])]
        else:
            # SQLite releases the GIL while it aggregates: ranges read on their own
            # connections run on separate cores. Each range is one consistent snapshot.
            with ThreadPoolExecutor(parts) as pool:
                pieces = list(pool.map(lambda r: self._read_sqlite_range(*r), ranges))
        return [np.concatenate(column) for column in zip(*pieces, strict=True)]

    def _read_sqlite_range(self, lower: int, upper: int) -> list[npt.NDArray[Any]]:
        # group_concat turns a column into one string inside SQLite, which numpy parses
        # several times faster than Python could build a tuple per row.
        with self._read() as conn:
            texts = conn.exec_driver_sql(_SQLITE_READ_INTERACTIONS, (lower, upper)).one()
        return [_parse_numbers(text) for text in texts]

    def _read_interaction_rows(self, lower: int, upper: int) -> list[npt.NDArray[Any]]:
        e = t.events.c
        query = sa.select(
            e.user_ix, e.item_ix, e.type, e.ts, sa.func.coalesce(e.value, e.quantity, 1.0)
        ).where(e.id > lower, e.id <= upper, e.item_ix.is_not(None))
        with self._read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return [np.empty(0, dtype=np.int64) for _ in range(5)]
        return [np.asarray(column, dtype=np.float64) for column in zip(*rows, strict=True)]

    # -- lean reads for serving recommendations ---------------------------------------

    def item_event_rows(
        self,
        user_id: str | None = None,
        *,
        anonymous_id: str | None = None,
        limit: int = 500,
    ) -> list[ItemEventRow]:
        """A shopper's latest item events as plain rows, newest first, in one query.

        The lean twin of :meth:`history` for request-time use: rows are tuples of
        ``(item_ix, type_code, ts_ms, value, quantity, price, order_id)`` with the item
        index of :meth:`interactions`. Give ``user_id``, ``anonymous_id`` or both: the rows
        are those of everyone the two ids name, through identity links.
        """
        if user_id is None and anonymous_id is None:
            raise TypeError("give user_id, anonymous_id or both")
        if self._readers is not None:
            self._check_open()
            # One SELECT on the thread's own driver connection, in autocommit mode: the
            # statement is its own snapshot, and no pool checkout is paid per request.
            cursor = self._readers.connection().execute(
                serving.SQLITE_ITEM_EVENT_ROWS, (user_id, anonymous_id, int(limit))
            )
            return cast("list[ItemEventRow]", cursor.fetchall())
        params = {"user_id": user_id, "anonymous_id": anonymous_id, "limit": int(limit)}
        with self._read() as conn:
            found = conn.execute(_ITEM_EVENT_ROWS, params).all()
        return [cast("ItemEventRow", tuple(row)) for row in found]

    def item_index(self, after: int = 0) -> list[tuple[int, str]]:
        """``(item_ix, item_id)`` of every item with an index above ``after``, in order."""
        query = (
            sa.select(t.items.c.id, t.items.c.external_id)
            .where(t.items.c.id > after)
            .order_by(t.items.c.id)
        )
        with self._read() as conn:
            return [(int(ix), name) for ix, name in conn.execute(query)]

    def user_index(self, after: int = 0) -> list[tuple[int, str, bool]]:
        """``(user_ix, id, anonymous)`` of every user and visitor above ``after``, in order."""
        u = t.users.c
        query = sa.select(u.id, u.external_id, u.anonymous).where(u.id > after).order_by(u.id)
        with self._read() as conn:
            return [(int(ix), name, bool(anon)) for ix, name, anon in conn.execute(query)]

    def catalog_entries(
        self, updated_since: int | None = None
    ) -> tuple[list[tuple[int, CatalogItem]], int]:
        """Catalog items with their item index, those updated at or after ``updated_since``.

        Returns the entries and the latest ``updated_at`` among them (epoch milliseconds;
        ``updated_since`` when there are none): pass it back to read only later changes.
        Items updated within that same millisecond are read again, never missed.
        """
        query = sa.select(t.items.c.external_id, t.catalog).join(
            t.catalog, t.catalog.c.item_ix == t.items.c.id
        )
        if updated_since is not None:
            query = query.where(t.catalog.c.updated_at >= updated_since)
        with self._read() as conn:
            rows = conn.execute(query).all()
        latest = max((row.updated_at for row in rows), default=updated_since or 0)
        return [(int(row.item_ix), _catalog_item(row)) for row in rows], int(latest)

    def basket_rows(self, since: int | None = None, until: int | None = None) -> list[BasketRow]:
        """Order lines and session cart events stored after ``since`` (a watermark).

        Rows are ``(order_id, session_id, item_ix)``, in storage order: a purchase with an
        ``order_id``, or an ``add_to_cart`` / ``purchase`` event with a ``session_id``.
        ``until`` (a watermark too) bounds the read, so that it matches an
        :meth:`interactions` read.
        """
        with self._read() as conn:
            upper = until
            if upper is None:
                upper = conn.scalar(sa.select(sa.func.max(t.events.c.id))) or 0
            rows = conn.execute(serving.BASKET_ROWS, {"lower": since or 0, "upper": upper})
            return [cast("BasketRow", tuple(row)) for row in rows]

    def counts(self) -> StoreCounts:
        """Return how many events, users, items... the store holds."""
        count = sa.func.count()
        with self._read() as conn:
            by_kind = sa.select(t.users.c.anonymous, count).group_by(t.users.c.anonymous)
            user_kinds = {bool(kind): n for kind, n in conn.execute(by_kind)}
            return StoreCounts(
                events=conn.scalar(sa.select(count).select_from(t.events)) or 0,
                users=user_kinds.get(False, 0),
                anonymous_ids=user_kinds.get(True, 0),
                items=conn.scalar(sa.select(count).select_from(t.items)) or 0,
                catalog_items=conn.scalar(sa.select(count).select_from(t.catalog)) or 0,
                identity_links=conn.scalar(sa.select(count).select_from(t.identity_links)) or 0,
            )

    def item_ids(self, indices: Iterable[int]) -> list[str | None]:
        """Return the item id of each item index (as in :class:`Interactions`), or None."""
        return self._external_ids(t.items, indices)

    def user_ids(self, indices: Iterable[int]) -> list[str | None]:
        """Return the user or anonymous id of each user index, or None."""
        return self._external_ids(t.users, indices)

    def _external_ids(self, table: sa.Table, indices: Iterable[int]) -> list[str | None]:
        wanted = [int(ix) for ix in indices]
        names: dict[int, str] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(wanted)), _LOOKUP_CHUNK):
                query = sa.select(table.c.id, table.c.external_id).where(table.c.id.in_(chunk))
                names.update(conn.execute(query).all())
        return [names.get(ix) for ix in wanted]


_ITEM_EVENT_ROWS: Final = serving.item_event_rows_query()


def _event_rows(
    events: Sequence[Event],
    users: Mapping[str, int],
    visitors: Mapping[str, int],
    items: Mapping[str, int],
    received_at: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Turn events into rows: lean ones (``_LEAN_COLUMNS``) and full ones (all columns).

    Lean rows leave out ``received_at``, which :meth:`EventStore._insert_event_rows` adds.

    Written column by column with comprehensions, which run faster than one loop building
    each row: this is the Python part of the cost of ingestion.
    """
    lean_events = [e for e in events if _is_lean(e)]
    lean = list(
        zip(
            [_uuid_bytes(e.event_id) for e in lean_events],
            # Plain ints: some drivers write an IntEnum as its name (PyMySQL under
            # SQLAlchemy 2.0 sent 'TypeCode.view', which MariaDB stored as 0).
            [int(BUILTIN_TYPE_CODES[e.type]) for e in lean_events],
            [
                visitors[e.anonymous_id] if e.user_id is None else users[e.user_id]  # type: ignore[index]
                for e in lean_events
            ],
            [None if e.item_id is None else items[e.item_id] for e in lean_events],
            [_millis(e.timestamp) for e in lean_events],
            strict=True,
        )
    )
    if len(lean_events) == len(events):
        return lean, []
    full = [_full_row(e, users, visitors, items, received_at) for e in events if not _is_lean(e)]
    return lean, full


def _is_lean(event: Event) -> bool:
    """Whether the event fills only ``_LEAN_COLUMNS``."""
    return (
        event.quantity is None
        and event.price is None
        and event.currency is None
        and event.value is None
        and event.order_id is None
        and event.session_id is None
        and event.rec_id is None
        and not event.properties
        and not event.context
        and (event.user_id is None or event.anonymous_id is None)
        and event.type in BUILTIN_TYPE_CODES
    )


def _shopper_ids(user_id: object, anonymous_id: object) -> tuple[str | None, str | None]:
    """A shopper's ids, checked as events check them (integers become strings)."""
    for field, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
        if value == "":
            raise ValidationError(field, "must not be empty")
    try:
        return (
            None if user_id is None else check_id("user_id", user_id),
            None if anonymous_id is None else check_id("anonymous_id", anonymous_id),
        )
    except InvalidEvent as error:
        raise ValidationError(error.field, error.reason) from None


def _person_ids(
    conn: sa.Connection, subjects: list[int], user_id: str | None, anonymous_id: str | None
) -> tuple[str | None, tuple[str, ...]]:
    """The user id and anonymous ids of a person (``_subjects``); an unknown one keeps the
    id it was asked by."""
    if not subjects:
        return user_id, () if anonymous_id is None else (anonymous_id,)
    users = t.users.c
    ids = conn.execute(
        sa.select(users.external_id, users.anonymous).where(users.id.in_(subjects))
    ).all()
    return (
        next((name for name, anonymous in ids if not anonymous), None),
        tuple(sorted(name for name, anonymous in ids if anonymous)),
    )


def _link_times(conn: sa.Connection, subjects: list[int]) -> dict[str, datetime]:
    """When each linked anonymous id among ``subjects`` was linked, by its external id."""
    links = t.identity_links.c
    rows = conn.execute(
        sa.select(t.users.c.external_id, links.linked_at)
        .join(t.users, t.users.c.id == links.anonymous_ix)
        .where(links.anonymous_ix.in_(subjects))
        .order_by(t.users.c.external_id)
    ).all()
    return {anon: _from_ms(at) for anon, at in rows}


def _erase_person(conn: sa.Connection, person: list[int]) -> tuple[int, int]:
    """Delete the events and links of a person (``_subjects``); return how many of each.

    Links committed meanwhile by other writers (PostgreSQL and MySQL read committed rows
    statement by statement) are looked for again, so none is left without its events.
    """
    owner, erased, unlinked = person[0], 0, 0
    pending, done = set(person), set()
    links = t.identity_links.c
    while pending:
        ids = sorted(pending)
        erased += conn.execute(sa.delete(t.events).where(t.events.c.user_ix.in_(ids))).rowcount
        unlinked += conn.execute(
            sa.delete(t.identity_links).where(links.anonymous_ix.in_(ids))
        ).rowcount
        done |= pending
        linked = conn.scalars(sa.select(links.anonymous_ix).where(links.user_ix == owner))
        pending = set(linked) - done
    return int(erased), int(unlinked)


def _log_erasure(conn: sa.Connection, scope: str, events: int, log_id: int | None = None) -> int:
    """Log an erasure, or add to the one ``log_id`` names; return its id."""
    log = t.erasures
    if log_id is not None:
        conn.execute(
            sa.update(log).where(log.c.id == log_id).values(events=log.c.events + int(events))
        )
        return log_id
    row = {"erased_at": _now_ms(), "scope": scope, "events": int(events)}
    key = conn.execute(log.insert().values(**row)).inserted_primary_key
    assert key is not None  # a plain INSERT of one row
    return int(key[0])


def _migrate(conn: sa.Connection, version: int) -> None:
    """Bring a database of an older schema version up to this one (tables only added)."""
    for added in range(version + 1, t.SCHEMA_VERSION + 1):
        for table in t.ADDED_IN[added]:
            table.create(conn, checkfirst=True)
    conn.execute(sa.update(t.schema_version).values(version=t.SCHEMA_VERSION))


def _millis(moment: datetime) -> int:
    # Exact: whole seconds from the float, the rest from the integer microseconds.
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _full_row(
    event: Event,
    users: Mapping[str, int],
    visitors: Mapping[str, int],
    items: Mapping[str, int],
    received_at: int,
) -> tuple[Any, ...]:
    code = BUILTIN_TYPE_CODES.get(event.type, TypeCode.custom)
    if event.user_id is None:
        subject = visitors[event.anonymous_id]  # type: ignore[index]
        visitor = None
    else:
        subject = users[event.user_id]
        visitor = None if event.anonymous_id is None else visitors[event.anonymous_id]
    return (
        _uuid_bytes(event.event_id),
        int(code),
        subject,
        None if event.item_id is None else items[event.item_id],
        _millis(event.timestamp),
        received_at,
        event.type if code is TypeCode.custom else None,
        visitor,
        event.quantity,
        event.price,
        event.currency,
        event.value,
        event.order_id,
        event.session_id,
        event.rec_id,
        _json_or_none(event.properties),
        _json_or_none(event.context),
    )


def _named_events() -> sa.Select[Any]:
    """Event rows with their subject's, visitor's and item's external ids."""
    subject = t.users.alias("subject")
    visitor = t.users.alias("visitor")
    return (
        sa.select(
            t.events,
            subject.c.external_id.label("subject_id"),
            subject.c.anonymous.label("subject_anonymous"),
            visitor.c.external_id.label("visitor_id"),
            t.items.c.external_id.label("item_id"),
        )
        .join(subject, subject.c.id == t.events.c.user_ix)
        .outerjoin(visitor, visitor.c.id == t.events.c.anonymous_ix)
        .outerjoin(t.items, t.items.c.id == t.events.c.item_ix)
    )


_NAMED_EVENTS: Final = _named_events()

# Grows with every committed erasure, whatever order concurrent ones commit in (a largest
# id would not: ids are handed out before commit), and with every chunk of erase_before.
_ERASURE_MARK: Final = sa.select(
    sa.func.count() + sa.func.coalesce(sa.func.sum(t.erasures.c.events), 0)
)


def _event_from_row(row: sa.Row[Any]) -> Event:
    anonymous = bool(row.subject_anonymous)
    return Event(
        row.custom_type or TypeCode(row.type).name,
        event_id=_uuid_from_bytes(row.event_id),
        user_id=None if anonymous else row.subject_id,
        anonymous_id=row.subject_id if anonymous else row.visitor_id,
        item_id=row.item_id,
        timestamp=_from_ms(row.ts),
        quantity=row.quantity,
        price=row.price,
        currency=row.currency,
        value=row.value,
        order_id=row.order_id,
        session_id=row.session_id,
        rec_id=row.rec_id,
        properties=json.loads(row.properties) if row.properties else None,
        context=json.loads(row.context) if row.context else None,
    )


def _uuid_bytes(event_id: str) -> bytes:
    return bytes.fromhex(event_id.replace("-", ""))  # event ids are canonical UUID strings


def _uuid_from_bytes(raw: bytes) -> str:
    digits = bytes(raw).hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _catalog_row(fields: Mapping[str, Any], item_ix: int, now: int) -> dict[str, Any]:
    row: dict[str, Any] = {"item_ix": item_ix, "created_at": now, "updated_at": now}
    for name, value in fields.items():
        if name == "item_id":
            continue
        if name == "tags":
            value = json.dumps(list(value), ensure_ascii=False)
        elif name == "attributes":
            value = _json_or_none(value)
        row[name] = value
    row.setdefault("available", True)
    return row


def _catalog_item(row: sa.Row[Any]) -> CatalogItem:
    return CatalogItem(
        item_id=row.external_id,
        title=row.title,
        category=row.category,
        tags=tuple(json.loads(row.tags)) if row.tags else (),
        price=row.price,
        available=bool(row.available),
        attributes=json.loads(row.attributes) if row.attributes else {},
        created_at=_from_ms(row.created_at),
        updated_at=_from_ms(row.updated_at),
    )


def _parse_numbers(text: str | None) -> npt.NDArray[Any]:
    if not text:
        return np.empty(0, dtype=np.int64)
    is_float = "." in text or "e" in text
    return np.fromstring(text, sep=",", dtype=np.float64 if is_float else np.int64)
