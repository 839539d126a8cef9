"""The apps bench_collector.py serves: recsdk's collector and a reference (WSGI, gunicorn), and
recsdk's collector as an ASGI app (uvicorn).

All are app factories (``gunicorn "collector_apps:recsdk_collector()"``, ``uvicorn --factory
collector_apps:recsdk_collector_asgi``) that read their SQLite file from
``RECSDK_BENCH_DATABASE``. The reference is the least an endpoint can do:
parse the JSON body and ``executemany`` the events into a plain table, with the pragmas the
event store uses (WAL, synchronous=NORMAL, 16 KiB pages, a 32 MiB cache), and no
validation, enrichment, deduplication or index.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

WRITE_KEY = "wk_bench"
REFERENCE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events (event_id TEXT, type TEXT, user_id TEXT, "
    "item_id TEXT, timestamp TEXT, properties TEXT)"
)
REFERENCE_INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def database_path() -> str:
    return os.environ["RECSDK_BENCH_DATABASE"]


def recsdk_collector() -> WSGIApp:
    """recsdk's collector over an event store in the benchmark's file, write key required."""
    from recsdk.collector import wsgi_app

    store, config = _store_and_config()
    return wsgi_app(store, config=config)


def recsdk_collector_asgi() -> Any:
    """The same collector as an ASGI application."""
    from recsdk.collector import asgi_app

    store, config = _store_and_config()
    return asgi_app(store, config=config)


def _store_and_config() -> tuple[Any, Any]:
    """The event store in the benchmark's file and the collector's settings (a write key, no
    rate limit)."""
    from recsdk import EventStore
    from recsdk.collector import CollectorConfig

    config = CollectorConfig(write_keys=[WRITE_KEY], rate_limit=None)
    return EventStore(f"sqlite:///{database_path()}"), config


def connect_reference(path: str) -> sqlite3.Connection:
    """A connection with the event store's SQLite settings (recsdk/store/engines.py)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "page_size=16384",
        "cache_size=-32768",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "busy_timeout=30000",
    ):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(REFERENCE_SCHEMA)
    return conn


def reference_endpoint() -> WSGIApp:
    """Parse the JSON body, executemany its events, answer how many: nothing else."""
    connections: dict[int, sqlite3.Connection] = {}  # one per process (gunicorn forks)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] != "POST":
            start_response("404 Not Found", [("Content-Length", "0")])
            return [b""]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        batch = json.loads(body)["batch"]
        rows = [
            (
                event.get("event_id"),
                event.get("type"),
                event.get("user_id"),
                event.get("item_id"),
                event.get("timestamp"),
                json.dumps(event.get("properties")),
            )
            for event in batch
        ]
        pid = os.getpid()
        conn = connections.get(pid) or connections.setdefault(
            pid, connect_reference(database_path())
        )
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(REFERENCE_INSERT, rows)
        conn.execute("COMMIT")
        answer = json.dumps({"accepted": len(rows)}).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
        )
        return [answer]

    return app
