"""The collector as an ASGI application, for FastAPI, Starlette and any ASGI server (uvicorn,
hypercorn, daphne).

The core is synchronous: it writes through SQLAlchemy and may wait on the database. Each
request therefore runs in a small thread pool of the application's own, so the event loop,
and with it every other request of the shop, never waits on the store. The pool's size also
bounds how many requests use the store at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from recsdk.collector.core import Collector, CollectorConfig, Prefix, Request, Response
from recsdk.collector.reads import ListSource
from recsdk.store import EventStore

__all__ = ["asgi_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def asgi_app(
    store: EventStore | Collector,
    *,
    prefix: str = "/recsdk",
    config: CollectorConfig | None = None,
    recommender: ListSource | None = None,
    threads: int = 4,
) -> ASGIApp:
    """Make an ASGI application that serves the collector under ``prefix``.

    It answers the same endpoints as :func:`~recsdk.collector.wsgi_app`. Served alone
    (``uvicorn shop.collector:app``), it takes requests for ``{prefix}/...``; mounted in
    another application (``fastapi_app.mount("/recsdk", asgi_app(store, prefix=""))``),
    paths are taken below the mount point (the scope's ``root_path``).

    Parameters
    ----------
    store:
        The event store to write to, or a ready :class:`~recsdk.collector.core.Collector`.
    prefix:
        Where the endpoints live, below any mount point: ``"/recsdk"`` for
        ``/recsdk/events``, ``""`` for ``/events``.
    config:
        Limits and enrichment; ignored when ``store`` is a Collector.
    recommender:
        A :class:`~recsdk.Recommender` for the list endpoints (404 without one); ignored
        when ``store`` is a Collector.
    threads:
        Requests handled at once; more wait for a free thread without blocking the loop.
    """
    if threads < 1:
        raise ValueError("threads must be at least 1")
    collector = store if isinstance(store, Collector) else Collector(store, config, recommender)
    mount = Prefix(prefix)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="recsdk-collector")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1003})
        elif kind == "http":
            response = await _answer(collector, mount, pool, scope, receive)
            if response is not None:
                await _send(send, response)

    app.collector = collector  # type: ignore[attr-defined]
    return app


async def _answer(
    collector: Collector, mount: Prefix, pool: ThreadPoolExecutor, scope: Scope, receive: Receive
) -> Response | None:
    """The response to one HTTP request; ``None`` when the client left before its body
    arrived (there is no one to answer)."""
    path = _path(scope)
    relative = mount.relative(path)
    if relative is None:
        return Response.not_found(path)
    method = str(scope.get("method", "GET")).upper()
    body = b""
    if method == "POST":
        received = await _read_body(receive, collector.config.max_body_bytes)
        if received is None:
            return None
        body = received
    client = scope.get("client")
    request = Request(
        method,
        relative,
        _headers(scope.get("headers") or ()),
        body,
        str(client[0]) if client else None,
        bytes(scope.get("query_string") or b"").decode("latin-1"),
    )
    return await asyncio.get_running_loop().run_in_executor(pool, collector.handle, request)


def _path(scope: Scope) -> str:
    """The request's path below the application's mount point.

    Servers and routers differ on whether ``path`` still holds ``root_path``: Starlette's
    ``Mount`` keeps it, some proxies' setups do not. Take it off only where it is there.
    """
    path = str(scope.get("path") or "/")
    root = str(scope.get("root_path") or "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :] or "/"
    return path


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names in lower case; a repeated header's values joined as HTTP allows."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = bytes(name).decode("latin-1").lower()
        text = bytes(value).decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """Read at most ``limit + 1`` bytes: enough to tell that a body is too large. ``None``
    when the client disconnects first."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = bytes(message.get("body") or b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)[: limit + 1]


async def _send(send: Send, response: Response) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in (*response.headers, ("Content-Length", str(response.content_length)))
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Served alone, the application has nothing to start or stop: say so."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
