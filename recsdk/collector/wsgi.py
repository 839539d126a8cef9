"""The collector as a plain WSGI application, for any WSGI server (gunicorn, waitress, uwsgi)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from recsdk.collector.core import Collector, CollectorConfig, Prefix, Request, Response
from recsdk.collector.reads import ListSource
from recsdk.store import EventStore

__all__ = ["wsgi_app"]

_REASONS = {
    200: "OK",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def wsgi_app(
    store: EventStore | Collector,
    *,
    prefix: str = "/recsdk",
    config: CollectorConfig | None = None,
    recommender: ListSource | None = None,
) -> WSGIApp:
    """Make a WSGI application that serves the collector under ``prefix``.

    ``POST {prefix}/events`` takes ``{"batch": [event, ...], "sent_at": ...}`` as JSON (any
    content type, ``text/plain`` included, optionally gzip-encoded) and answers per event.
    ``GET {prefix}/recommendations`` and ``GET {prefix}/similar/<item_id>`` answer lists
    from ``recommender``; ``GET {prefix}/recsdk.js`` serves the browser tracker.

    Parameters
    ----------
    store:
        The event store to write to, or a ready :class:`~recsdk.collector.core.Collector`.
    prefix:
        Where the endpoints live, e.g. ``"/recsdk"`` for ``/recsdk/events``.
    config:
        Limits and enrichment; ignored when ``store`` is a Collector.
    recommender:
        A :class:`~recsdk.Recommender` for the list endpoints (404 without one); ignored
        when ``store`` is a Collector.
    """
    collector = store if isinstance(store, Collector) else Collector(store, config, recommender)
    mount = Prefix(prefix)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = _path(environ)
        relative = mount.relative(path)
        if relative is None:
            response = Response.not_found(path)
        else:
            response = collector.handle(_request(environ, relative, collector.config))
        headers = [*response.headers, ("Content-Length", str(response.content_length))]
        reason = _REASONS.get(response.status, "")
        start_response(f"{response.status} {reason}".rstrip(), headers)
        return [response.body]

    app.collector = collector  # type: ignore[attr-defined]
    return app


def _path(environ: dict[str, Any]) -> str:
    """PATH_INFO as text: PEP 3333 servers give the URL's bytes as latin-1, ids are UTF-8."""
    path = str(environ.get("PATH_INFO") or "/")
    try:
        return path.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a server that decoded it already
        return path


def _request(environ: dict[str, Any], path: str, config: CollectorConfig) -> Request:
    headers = {
        name[5:].replace("_", "-").lower(): str(value)
        for name, value in environ.items()
        if name.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    body = _read_body(environ, config.max_body_bytes) if method == "POST" else b""
    query = str(environ.get("QUERY_STRING") or "")
    return Request(method, path, headers, body, environ.get("REMOTE_ADDR"), query)


def _read_body(environ: dict[str, Any], limit: int) -> bytes:
    """Read at most ``limit + 1`` bytes: enough to tell that a body is too large."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    wanted = limit + 1 if length < 0 else min(length, limit + 1)
    chunks: list[bytes] = []
    remaining = wanted
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
