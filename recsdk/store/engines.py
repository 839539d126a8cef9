"""Making the store's own SQLAlchemy engine, and what each database needs of it.

SQLite gets its pragmas (WAL, synchronous=NORMAL, busy_timeout, foreign keys) and explicit
``BEGIN`` statements from listeners on *this* engine only, never on the global ``Engine``
class, so the shop's own databases are left as they are. Engines are disposed in forked
children (gunicorn, uwsgi) so that no connection is shared across processes.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event

__all__ = ["WRITE", "create_store_engine", "normalize_url"]

WRITE: Final = {"recsdk_write": True}
"""Execution options of a connection that will write (SQLite then begins IMMEDIATE)."""

# A bare "postgresql://" would load psycopg2 and "mysql://" mysqlclient; the extras install
# psycopg 3 and PyMySQL, so those are the defaults here.
_DEFAULT_DRIVERS: Final = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}

SQLITE_CACHE_KIB: Final = 32 * 1024
"""Page cache of each SQLite connection, at most (SQLite's own default is 2 MiB)."""

SQLITE_MMAP_BYTES: Final = 1 << 30
"""How much of a SQLite file connections read through a memory map (SQLite's default: 0)."""

_live_engines: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse a database URL, choosing the driver recsdk's extras install when none is named."""
    parsed = sa.make_url(url)
    driver = _DEFAULT_DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def create_store_engine(url: sa.URL, *, busy_timeout: float, echo: bool = False) -> sa.Engine:
    """Create the engine of one EventStore, configured for its kind of database."""
    options: dict[str, Any] = {"echo": echo, "pool_pre_ping": url.get_backend_name() != "sqlite"}
    if url.get_backend_name() in {"mysql", "mariadb"}:
        # Under REPEATABLE READ a transaction would not see ids another one just interned.
        options["isolation_level"] = "READ COMMITTED"
    engine = sa.create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout)
    _live_engines.add(engine)
    return engine


def _configure_sqlite(engine: sa.Engine, busy_timeout: float) -> None:
    in_memory = engine.url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" listener below issue BEGIN, not the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Larger pages halve the pages a batch of events dirties in the indexes (taken
            # by new databases only); a larger page cache spares the disk reads of a busy
            # index. Both were measured with benchmarks/bench_store.py.
            cursor.execute("PRAGMA page_size=16384")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # Reads through the map skip a system call per page: a shopper's history,
                # two dozen rows on as many pages, reads in half the time
                # (benchmarks/bench_serving.py). Processes share the mapped pages.
                cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that read first
        # could not upgrade its lock once another process wrote, and would fail at once
        # instead of waiting out busy_timeout.
        writes = connection.get_execution_options().get("recsdk_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _dispose_after_fork() -> None:
    for engine in list(_live_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_after_fork)
