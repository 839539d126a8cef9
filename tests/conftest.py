"""Shared fixtures: a fresh event store per test on SQLite, PostgreSQL and MariaDB.

The SQLite store is a new file in the test's temporary folder. PostgreSQL
(127.0.0.1:5432, database ``test``, trust auth) and MariaDB/MySQL (127.0.0.1:3306, user
``root``, no password, database ``test``) are the servers this project's machines run;
their tests are skipped, with the reason, where no server answers. Override the URLs with
``RECSDK_TEST_POSTGRES_URL`` and ``RECSDK_TEST_MYSQL_URL``.
"""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import sqlalchemy as sa

from recsdk import EventStore
from recsdk.store import tables
from recsdk.store.engines import normalize_url

POSTGRES_URL = os.environ.get(
    "RECSDK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# A mysql:// URL, as most users write it; the server is MariaDB.
MYSQL_URL = os.environ.get("RECSDK_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")

BACKENDS = ["sqlite", "postgresql", "mariadb"]


def _server_answers(url: str) -> bool:
    parsed = sa.make_url(url)
    try:
        with socket.create_connection((parsed.host or "127.0.0.1", parsed.port or 0), 1):
            return True
    except OSError:
        return False


def server_url(backend: str) -> str:
    """The URL of a database server for ``backend``, or skip the test if none answers."""
    url = POSTGRES_URL if backend == "postgresql" else MYSQL_URL
    if not _server_answers(url):
        if os.environ.get("CI"):
            pytest.fail(f"no {backend} server answers at {url}, and CI must test it")
        pytest.skip(f"no {backend} server answers at {url}")
    return url


def drop_tables(url: str) -> None:
    engine = sa.create_engine(normalize_url(url))
    try:
        tables.metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty store: a new SQLite file, or a server database emptied of recsdk."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'recsdk.db'}"
        return
    url = server_url(backend)
    drop_tables(url)
    yield url
    drop_tables(url)


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    with EventStore(store_url) as event_store:
        yield event_store


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'recsdk.db'}"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve a WSGI app on a free port of 127.0.0.1 in a thread; yield its base URL."""
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
