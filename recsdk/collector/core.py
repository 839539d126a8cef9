"""The collector's framework-free core: a request's body -> events -> the store -> the answer.

Front ends (plain WSGI, ASGI, Flask, Django) turn their framework's request into a
:class:`Request`, call :meth:`Collector.handle` and send back the :class:`Response`. Nothing a
client sends makes the collector answer 500: bad input gets a 4xx that says what is wrong,
and a batch's valid events are stored even when some of its events are invalid.

Beside ``POST /events``, a collector given a recommender answers ``GET /recommendations``
and ``GET /similar/<item_id>``, and every collector serves the tracker, ``GET /recsdk.js``
(see :mod:`recsdk.collector.reads`).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import math
import re
import threading
import urllib.parse
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import attrs
import sqlalchemy as sa

from recsdk.collector.access import (
    RateLimiter,
    bearer_key,
    cors_headers,
    matches_any,
    preflight_headers,
)
from recsdk.collector.reads import (
    SCRIPT_MAX_AGE,
    BadParameter,
    ListSource,
    ScriptFile,
    json_bytes,
    parse_query,
    read_list,
)
from recsdk.errors import InvalidEvent, NotFitted, ValidationError, checked_int, checked_number
from recsdk.events import MAX_JSON_BYTES, new_event_id, parse_timestamp
from recsdk.store import EventStore

__all__ = ["Collector", "CollectorConfig", "Prefix", "Request", "Response"]

log = logging.getLogger("recsdk.collector")

_JSON: Final = "application/json"

KNOWN_BOTS: Final = re.compile(
    r"bot|crawl|spider|slurp|scrape|headlesschrome|phantomjs|lighthouse|pingdom|"
    r"facebookexternalhit|bingpreview|python-requests|curl/|wget/",
    re.IGNORECASE,
)
"""User agents whose events are counted and not stored."""


def _strings(values: Iterable[str]) -> tuple[str, ...]:
    return (values,) if isinstance(values, str) else tuple(values)


def _origins(values: Iterable[str]) -> tuple[str, ...]:
    """Origins as browsers send them: ``scheme://host[:port]``, lower case, no default port
    and no slash (``"https://Shop.example:443/"`` -> ``"https://shop.example"``)."""
    out = []
    for value in _strings(values):
        origin = _origin(value) if isinstance(value, str) else None
        if origin is None:
            raise ValidationError(
                "allowed_origins",
                f"{value!r} is no origin; write it as a browser sends it: https://shop.example",
            )
        out.append(origin)
    return tuple(out)


def _origin(text: str) -> str | None:
    parts = urllib.parse.urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    default = 443 if parts.scheme == "https" else 80
    shown = f":{port}" if port not in (None, default) else ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    return f"{parts.scheme}://{host}{shown}"


def _integer(minimum: int) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        checked_int(attribute.name, value, minimum=minimum)

    return check


def _flag(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, f"must be True or False, not {value!r}")


def _rate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        checked_number(attribute.name, value, above=0)


@attrs.frozen
class CollectorConfig:
    """How the collector treats what it receives.

    Parameters
    ----------
    max_body_bytes:
        Largest request body, as sent (413 above it).
    max_decoded_bytes:
        Largest body once gzip is undone (413 above it): a guard against zip bombs.
    max_events:
        Most events in one batch (413 above it).
    truncate_ip:
        Store only the network part of IP addresses (IPv4 /24, IPv6 /48).
    correct_clock_skew:
        Shift event timestamps by the difference between the client's ``sent_at`` and the
        time the batch arrived, so a client with a wrong clock still records true times.
    drop_bots:
        Count and drop events from known bots and automated browsers.
    write_keys:
        Secret keys of server clients, sent as ``Authorization: Bearer <key>``.
    public_keys:
        Keys of the shop's pages, sent in the batch as ``"key"``; accepted only from
        ``allowed_origins``. With neither kind of key configured, anyone may send events.
    allowed_origins:
        Origins (``"https://shop.example"``) whose pages may send events; they alone get
        CORS headers.
    rate_limit, rate_limit_burst:
        Requests a second per client IP, on average and at once (429 beyond); ``None``
        turns the limit off. Requests with a valid write key are not limited.
    trust_forwarded_for:
        Take the client's IP from ``X-Forwarded-For`` (behind the shop's own proxy only).
    recommendations_need_key:
        ``GET /recommendations`` answers only requests with a write key, or with a public
        key (query parameter ``key``) from an allowed origin. Off by default: anyone who
        knows a user id may then ask for that user's list, reasons included.
    """

    max_body_bytes: int = attrs.field(default=500 * 1024, validator=_integer(1))
    max_decoded_bytes: int = attrs.field(default=5 * 1024 * 1024, validator=_integer(1))
    max_events: int = attrs.field(default=500, validator=_integer(1))
    truncate_ip: bool = attrs.field(default=True, validator=_flag)
    correct_clock_skew: bool = attrs.field(default=True, validator=_flag)
    drop_bots: bool = attrs.field(default=True, validator=_flag)
    write_keys: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    public_keys: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), converter=_origins)
    rate_limit: float | None = attrs.field(default=20.0, validator=_rate)
    rate_limit_burst: int = attrs.field(default=60, validator=_integer(1))
    trust_forwarded_for: bool = attrs.field(default=False, validator=_flag)
    recommendations_need_key: bool = attrs.field(default=False, validator=_flag)

    @property
    def open(self) -> bool:
        """Whether anyone may send events (no key is configured)."""
        return not self.write_keys and not self.public_keys


@attrs.frozen
class Request:
    """What the core needs of an HTTP request.

    ``path`` is relative to the collector's prefix (``"/events"``), decoded; ``query`` is
    the raw query string (``"k=4&user_id=u1"``); header names are lower case; ``body`` is
    at most ``max_body_bytes + 1`` bytes (front ends read no more).
    """

    method: str
    path: str
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    remote_addr: str | None = None
    query: str = ""


@attrs.frozen
class Response:
    """What to send back: a status, headers and a body."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    omitted: int = 0
    """Bytes of body left out: the body a ``GET`` gets, in the answer to a ``HEAD``."""

    @property
    def content_length(self) -> int:
        """The ``Content-Length`` to send: the body's, with what was left out."""
        return len(self.body) + self.omitted

    @classmethod
    def json(cls, status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, body, (("Content-Type", "application/json"), *headers))

    @classmethod
    def not_found(cls, path: str) -> Response:
        """The answer for a path that is no endpoint."""
        return cls.json(404, {"error": f"no such endpoint: {path[:100]}"})


def _mount_point(prefix: str) -> str:
    """``"/recsdk"`` from ``"recsdk/"`` or ``"/recsdk"``; ``""`` for the root."""
    stripped = prefix.strip("/")
    return "/" + stripped if stripped else ""


@attrs.frozen
class Prefix:
    """Where a front end that routes for itself (WSGI, ASGI) serves the collector."""

    base: str = attrs.field(converter=_mount_point)
    """``"/recsdk"`` from ``"recsdk/"``; ``""`` serves at the root."""

    def relative(self, path: str) -> str | None:
        """``path`` below the prefix (``"/recsdk/events"`` -> ``"/events"``); ``None`` for
        a path outside it."""
        if self.base and not (path == self.base or path.startswith(self.base + "/")):
            return None
        return path[len(self.base) :] or "/"


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(message)
        self.status = status
        self.headers = tuple(headers)


@attrs.define
class _Counters:
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    bots: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, count in counts.items():
                setattr(self, name, getattr(self, name) + count)


class Collector:
    """Receives batches of events over HTTP and stores each event exactly once.

    Parameters
    ----------
    store:
        Where events go.
    config:
        Limits and enrichment (:class:`CollectorConfig`).
    recommender:
        A :class:`~recsdk.Recommender` to answer ``/recommendations`` and ``/similar``
        from; events stored here then update its shoppers' lists at once.
    """

    def __init__(
        self,
        store: EventStore,
        config: CollectorConfig | None = None,
        recommender: ListSource | None = None,
    ) -> None:
        self.store = store
        self.config = config or CollectorConfig()
        self.recommender = recommender
        self._script = ScriptFile()
        self._counters = _Counters()
        limit = self.config.rate_limit
        self._limiter = RateLimiter(limit, self.config.rate_limit_burst) if limit else None
        if self.config.open:
            log.warning("recsdk collector: no write or public key is set; anyone may send events")

    def stats(self) -> dict[str, int]:
        """Batches handled, and events accepted, duplicate, rejected and dropped as bots."""
        c = self._counters
        return {
            "batches": c.batches,
            "accepted": c.accepted,
            "duplicates": c.duplicates,
            "rejected": c.rejected,
            "bots": c.bots,
        }

    def handle(self, request: Request) -> Response:
        """Answer one request; never raises. ``HEAD`` is answered as ``GET``, without the
        body."""
        origin = request.headers.get("origin")
        if request.method == "HEAD":
            full = self._answer(attrs.evolve(request, method="GET"))
            response = attrs.evolve(full, body=b"", omitted=len(full.body))
        else:
            response = self._answer(request)
        # A refusal is readable by any page: it holds no shopper's data, and a tracker on a
        # page the config leaves out must see the 4xx to drop its batch. Without CORS
        # headers the browser would hide the status, and the batch would be sent for ever.
        readers = (origin,) if origin and response.status >= 400 else self._origins_for(request)
        cors = cors_headers(origin, readers)
        return attrs.evolve(response, headers=(*response.headers, *cors))

    def _answer(self, request: Request) -> Response:
        try:
            return self._route(request)
        except _BadRequest as problem:
            return Response.json(problem.status, {"error": str(problem)}, problem.headers)
        except BadParameter as problem:
            body = {"error": str(problem), "parameter": problem.parameter}
            return Response.json(400, body, [("Cache-Control", "no-store")])
        except NotFitted:
            return Response.json(
                503,
                {"error": "recommendations are not ready: no model has been fitted yet"},
                [("Retry-After", "60"), ("Cache-Control", "no-store")],
            )
        except sa.exc.SQLAlchemyError:
            log.exception("recsdk collector: the event store failed")
            return Response.json(
                503,
                {"error": "the event store is unavailable; retry later"},
                [("Retry-After", "5")],
            )
        except Exception:  # a bug of ours: log it, and still answer
            log.exception("recsdk collector: unexpected error")
            return Response.json(500, {"error": "internal error"})

    def _route(self, request: Request) -> Response:
        path = request.path if request.path.startswith("/similar/") else request.path.rstrip("/")
        path = path or "/"
        if path == "/events":
            self._check_method(request, "POST", "use POST to send events")
            if request.method == "OPTIONS":
                return self._preflight(request, "POST, OPTIONS")
            return self._receive(request, self._admit(request))
        if path == "/recsdk.js":
            self._check_method(request, "GET", "use GET to load the tracker")
            if request.method == "OPTIONS":
                return self._preflight(request, "GET, OPTIONS")
            return self._serve_script(request)
        if path == "/recommendations" or path.startswith("/similar/"):
            self._check_method(request, "GET", "use GET to ask for recommendations")
            if request.method == "OPTIONS":
                return self._preflight(request, "GET, OPTIONS")
            return self._serve_list(request, path)
        return Response.not_found(path)

    @staticmethod
    def _check_method(request: Request, method: str, hint: str) -> None:
        if request.method not in (method, "OPTIONS"):
            allowed = "GET, HEAD, OPTIONS" if method == "GET" else f"{method}, OPTIONS"
            raise _BadRequest(405, hint, [("Allow", allowed)])

    def _preflight(self, request: Request, methods: str) -> Response:
        origin = request.headers.get("origin")
        return Response(204, b"", preflight_headers(origin, self._origins_for(request), methods))

    def _origins_for(self, request: Request) -> Collection[str]:
        """Origins whose pages may read this answer.

        An open collector (no keys, no origins configured) takes events from anyone, so any
        page may read its answers to them: a tracker on another origin would otherwise
        never learn that its events arrived, and would send them again and again.
        Recommendation lists stay with the configured origins: they describe a shopper.
        """
        origin = request.headers.get("origin")
        allowed = self.config.allowed_origins
        if origin and not allowed and self.config.open and request.path.rstrip("/") == "/events":
            return (origin,)
        return allowed

    def _admit(self, request: Request) -> bool:
        """Check the write key and the rate limit; return whether the request is trusted."""
        server_key = bearer_key(request.headers)
        trusted = matches_any(server_key, self.config.write_keys)
        if server_key and not trusted:
            raise _BadRequest(401, "unknown write key")
        bare = request.headers.get("authorization", "").strip()
        if server_key is None and bare and " " not in bare:  # a key without its scheme
            # (Other schemes pass: a staging site's Basic auth reaches here from its pages.)
            raise _BadRequest(401, "send a write key as 'Authorization: Bearer <key>'")
        if not trusted and self._limiter:
            wait = self._limiter.acquire(_client_ip(request, self.config) or "unknown")
            if wait:
                retry = str(max(1, math.ceil(wait)))
                raise _BadRequest(429, "too many requests; slow down", [("Retry-After", retry)])
        return trusted

    def _serve_list(self, request: Request, path: str) -> Response:
        recommender = self.recommender
        if recommender is None:
            raise _BadRequest(
                404, "recommendations are not enabled here: give the collector a Recommender"
            )
        trusted = self._admit(request)
        params = parse_query(request.query)
        item = path[len("/similar/") :] if path.startswith("/similar/") else None
        if item is None and self.config.recommendations_need_key and not trusted:
            self._check_page_key(request, params.get("key"), where="query parameter 'key'")
        answer = read_list(recommender, params, item)
        # Each answer has its own rec_id and may be personal: no shared cache keeps it.
        return Response(
            200, json_bytes(answer), (("Content-Type", _JSON), ("Cache-Control", "no-store"))
        )

    def _serve_script(self, request: Request) -> Response:
        found = self._script.get()
        if found is None:
            raise _BadRequest(404, "this recsdk package ships no tracker script")
        body, etag = found
        headers = (
            ("Content-Type", "application/javascript; charset=utf-8"),
            ("Cache-Control", f"public, max-age={SCRIPT_MAX_AGE}"),
            ("ETag", etag),
        )
        if etag in request.headers.get("if-none-match", ""):
            return Response(304, b"", headers[1:])
        return Response(200, body, headers)

    def _check_page_key(self, request: Request, key: Any, where: str = "batch 'key'") -> None:
        """A request without a write key needs a public key (sent ``where``), from an
        allowed origin."""
        if self.config.open:
            return
        if matches_any(key if isinstance(key, str) else None, self.config.public_keys):
            if request.headers.get("origin") not in self.config.allowed_origins:
                raise _BadRequest(403, "this key is accepted only from the shop's own pages")
            return
        if matches_any(key if isinstance(key, str) else None, self.config.write_keys):
            raise _BadRequest(
                401, f"send a write key in the Authorization header, never in the {where}"
            )
        raise _BadRequest(401, f"a valid key is required (Authorization header or {where})")

    def _receive(self, request: Request, trusted: bool) -> Response:
        received_at = datetime.now(timezone.utc)
        batch, sent_at, key, body_bytes = self._read_envelope(request)
        if not trusted:
            self._check_page_key(request, key)
        skew = received_at - sent_at if sent_at and self.config.correct_clock_skew else None
        results: list[dict[str, Any]] = [{} for _ in batch]
        candidates: list[Any] = []
        places: list[int] = []
        bots = 0
        # No event can be over the limit when the whole body is not.
        check_size = body_bytes > MAX_JSON_BYTES
        client_ip = _client_ip(request, self.config)
        for index, raw in enumerate(batch):
            problem = _too_large(raw) if check_size else None
            if problem:
                results[index] = problem
            elif self.config.drop_bots and _is_bot(raw, request, trusted):
                results[index] = {"status": "ignored", "reason": "bot"}
                bots += 1
            else:
                candidates.append(self._enrich(raw, request, client_ip, skew))
                places.append(index)
        outcome = self.store.add_many(candidates, report_duplicates=True)
        rejected = {r.index: r for r in outcome.rejected}
        self._forget_shoppers(candidates, rejected)
        duplicates = set(outcome.duplicate_indices)
        for position, index in enumerate(places):
            if position in rejected:
                error = rejected[position].error
                results[index] = {
                    "status": "rejected",
                    "field": error.field,
                    "reason": error.reason,
                }
            else:
                status = "duplicate" if position in duplicates else "accepted"
                results[index] = {"status": status, "event_id": candidates[position]["event_id"]}
        counts = {
            "accepted": outcome.inserted,
            "duplicates": outcome.duplicates,
            "rejected": sum(1 for r in results if r["status"] == "rejected"),
            "bots": bots,
        }
        self._counters.add(batches=1, **counts)
        return Response.json(200, {**counts, "results": results})

    def _forget_shoppers(self, events: Sequence[Any], rejected: Mapping[int, Any]) -> None:
        """Let the recommender read the new history of the shoppers who sent events."""
        if self.recommender is None:
            return
        shoppers = {
            (_as_id(event.get("user_id")), _as_id(event.get("anonymous_id")))
            for position, event in enumerate(events)
            if position not in rejected and isinstance(event, dict)
        }
        for user_id, anonymous_id in shoppers:
            self.recommender.invalidate(user_id, anonymous_id)

    def _read_envelope(self, request: Request) -> tuple[list[Any], datetime | None, Any, int]:
        """The batch, its ``sent_at``, its page key and the decoded body's size."""
        body = self._decoded_body(request)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise _BadRequest(400, "the body is not valid JSON") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
            raise _BadRequest(400, 'send {"batch": [event, ...]}: a JSON object with a list')
        batch = payload["batch"]
        if len(batch) > self.config.max_events:
            raise _BadRequest(
                413, f"{len(batch)} events in one batch; the limit is {self.config.max_events}"
            )
        return batch, _sent_at(payload.get("sent_at")), payload.get("key"), len(body)

    def _decoded_body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        if len(request.body) > limit:
            raise _BadRequest(413, f"the body is over {limit} bytes; send smaller batches")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("", "identity"):
            return request.body
        if encoding != "gzip":
            raise _BadRequest(415, f"content-encoding {encoding[:40]!r}: only gzip is accepted")
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = decoder.decompress(request.body, self.config.max_decoded_bytes + 1)
        except zlib.error:
            raise _BadRequest(400, "the body is not valid gzip") from None
        if len(body) > self.config.max_decoded_bytes or decoder.unconsumed_tail:
            raise _BadRequest(413, "the body is too large once decompressed")
        return body

    def _enrich(
        self, raw: Any, request: Request, client_ip: str | None, skew: timedelta | None
    ) -> Any:
        """Add what the server knows: the shopper's (truncated) IP, user agent, true time."""
        if not isinstance(raw, dict):
            return raw  # the store rejects it with the reason
        event = dict(raw)
        context = event.get("context")
        if context is None or isinstance(context, dict):
            context = dict(context or {})
            ip = context.get("ip", client_ip)
            if ip is not None:
                context["ip"] = _truncated_ip(ip) if self.config.truncate_ip else ip
                if context["ip"] is None:
                    del context["ip"]
            agent = request.headers.get("user-agent")
            if agent and "user_agent" not in context:
                context["user_agent"] = agent[:512]
            event["context"] = context
        if skew is not None and "timestamp" in event:
            event["timestamp"] = _shifted(event["timestamp"], skew)
        event.setdefault("event_id", new_event_id())
        return event


def _as_id(value: Any) -> str | None:
    """An id as events store it (integers become strings)."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _client_ip(request: Request, config: CollectorConfig) -> str | None:
    if config.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
        if forwarded:
            return forwarded
    return request.remote_addr


def _too_large(raw: Any) -> dict[str, Any] | None:
    try:
        size = len(json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        return None  # validation will say what is wrong
    if size <= MAX_JSON_BYTES:
        return None
    return {
        "status": "rejected",
        "field": "event",
        "reason": f"is {size} bytes as JSON; the limit is {MAX_JSON_BYTES}",
    }


def _is_bot(raw: Any, request: Request, trusted: bool) -> bool:
    """Whether the event comes from a bot: by the shopper's user agent in its context, else
    by the request's own, except for a server client with a write key (``trusted``), whose
    requests carry its HTTP library's user agent, not a shopper's."""
    context = raw.get("context") if isinstance(raw, dict) else None
    context = context if isinstance(context, dict) else {}
    if context.get("webdriver") is True:
        return True
    agent = context.get("user_agent") or (None if trusted else request.headers.get("user-agent"))
    return isinstance(agent, str) and bool(KNOWN_BOTS.search(agent))


def _truncated_ip(value: Any) -> str | None:
    """The network part of an address (IPv4 /24, IPv6 /48), or None if it is not one."""
    return _network_of(str(value).strip())


@functools.lru_cache(maxsize=4096)
def _network_of(text: str) -> str | None:
    # A batch's events share their sender's address: parse it once, not once per event.
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _sent_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except InvalidEvent:
        return None  # a bad sent_at only means no clock correction


def _shifted(value: Any, skew: timedelta) -> Any:
    try:
        return parse_timestamp(value) + skew
    except (InvalidEvent, OverflowError):
        return value  # validation will report the original value
