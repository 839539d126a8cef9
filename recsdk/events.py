"""The event model: :class:`Event`, its types and aliases, validation, and the wire format.

Every event that enters recsdk -- from tracker-js, a Python client, the collector or
straight into the store -- is an :class:`Event`. Building one validates it; a bad field
raises :class:`~recsdk.errors.InvalidEvent` naming the field and the reason.

The wire format is the JSON object :meth:`Event.to_dict` returns and
:meth:`Event.from_dict` reads; :func:`json_schema` returns its JSON Schema, the contract
shared with tracker-js, the tracking clients and the collector.
"""

from __future__ import annotations

import difflib
import enum
import functools
import json
import math
import random
import re
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from importlib import resources
from typing import Any, Final
from uuid import UUID

import attrs

from recsdk.errors import InvalidEvent

__all__ = [
    "BUILTIN_TYPE_CODES",
    "ITEM_EVENT_TYPES",
    "MAX_ID_LENGTH",
    "MAX_JSON_BYTES",
    "Event",
    "TypeCode",
    "check_id",
    "format_timestamp",
    "json_schema",
    "new_event_id",
    "normalize_type",
    "parse_timestamp",
    "type_code",
]

MAX_ID_LENGTH: Final = 256
"""Longest id (user, item, order...) accepted, in characters."""

MAX_JSON_BYTES: Final = 32 * 1024
"""Largest ``properties`` or ``context`` accepted, as compact UTF-8 JSON."""

_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=timezone.utc)
_FUTURE_SLACK: Final = timedelta(days=1)
_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CUSTOM_TYPE: Final = re.compile(r"x-[A-Za-z0-9][A-Za-z0-9_.:-]{0,61}")
_MAX_CUSTOM_TYPE: Final = 64  # x- included: the store's column


class TypeCode(enum.IntEnum):
    """The built-in event types and the small integers the store and engine use for them.

    Custom types (``"x-..."``) are all stored under ``custom``; their names are kept.
    The codes are part of the storage format: never renumber them, only append.
    """

    custom = 0
    page = 1
    view = 2
    click = 3
    add_to_cart = 4
    remove_from_cart = 5
    purchase = 6
    search = 7
    rate = 8
    wishlist = 9
    refund = 10


ITEM_EVENT_TYPES: Final = frozenset(
    {"view", "click", "add_to_cart", "remove_from_cart", "purchase", "rate", "wishlist", "refund"}
)
"""Types that are about one item and so need an ``item_id``."""

# Names of Segment's e-commerce spec for our types, matched without regard to case.
_ALIASES: Final[Mapping[str, str]] = {
    "page viewed": "page",
    "product viewed": "view",
    "product clicked": "click",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "order completed": "purchase",
    "products searched": "search",
    "product reviewed": "rate",
    "product rated": "rate",
    "product added to wishlist": "wishlist",
    "order refunded": "refund",
}
_TYPE_NAMES: Final[Mapping[str, str]] = {
    **{code.name: code.name for code in TypeCode if code is not TypeCode.custom},
    **_ALIASES,
}


def normalize_type(value: object) -> str:
    """Return the canonical name of an event type, resolving aliases.

    ``"Product Viewed"`` and ``"view"`` both give ``"view"``; custom types named
    ``"x-..."`` are returned as given.

    Raises
    ------
    InvalidEvent
        If the type is not a string, not known and not a custom ``x-`` type.
    """
    if not isinstance(value, str):
        raise InvalidEvent("type", f"must be a string, not {_kind(value)}")
    canonical = _TYPE_NAMES.get(value) or _TYPE_NAMES.get(value.strip().lower())
    if canonical is not None:
        return canonical
    if _CUSTOM_TYPE.fullmatch(value):
        return value
    if value.startswith("x-") and _CUSTOM_TYPE.fullmatch(value[:_MAX_CUSTOM_TYPE]):
        raise InvalidEvent(
            "type", f"a custom type is at most {_MAX_CUSTOM_TYPE} characters, not {len(value)}"
        )
    known = ", ".join(t.name for t in TypeCode if t is not TypeCode.custom)
    raise InvalidEvent(
        "type",
        f"unknown event type {value[:80]!r}; use one of {known}, a Segment e-commerce name "
        "such as 'Product Viewed', or a custom type named 'x-...'",
    )


BUILTIN_TYPE_CODES: Final[Mapping[str, TypeCode]] = {
    code.name: code for code in TypeCode if code is not TypeCode.custom
}
"""The code of each built-in type, by canonical name (custom ``x-`` types are not here)."""


def type_code(name: str) -> TypeCode:
    """Return the code of an event type given by name or alias (``custom`` for ``x-...``)."""
    return BUILTIN_TYPE_CODES.get(normalize_type(name), TypeCode.custom)


def new_event_id() -> str:
    """Make a new event id: a UUID version 7, so ids sort by creation time.

    Time-ordered ids keep the store's unique index append-mostly, which makes
    ingestion markedly faster than with random (version 4) ids.
    """
    millis = time.time_ns() // 1_000_000
    # The random module's global generator is reseeded in forked children, so ids stay
    # unique across gunicorn workers; a private Random() instance would not be.
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | random.getrandbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _to_event_id(value: object) -> str:
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str):
        raise InvalidEvent("event_id", f"must be a UUID string, not {_kind(value)}")
    if _CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(UUID(value))
    except ValueError:
        raise InvalidEvent("event_id", f"{value[:80]!r} is not a UUID") from None


def _to_id(field: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string, not {_kind(value)}")
    if not value:
        raise InvalidEvent(field, "must not be empty; leave the field out instead")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidEvent(field, f"is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    if _CONTROL_CHARS.search(value):
        raise InvalidEvent(field, "contains a control character")
    if _SURROGATES.search(value):
        raise InvalidEvent(field, "is not valid Unicode (a lone surrogate)")
    return value


def check_id(field: str, value: object) -> str:
    """Validate a required id as :class:`Event` does; ints become strings.

    Raises
    ------
    InvalidEvent
        Naming ``field``, if the id is missing, empty, too long or has control characters.
    """
    checked = _to_id(field, value)
    if checked is None:
        raise InvalidEvent(field, "is required")
    return checked


def parse_timestamp(value: object) -> datetime:
    """Read a timestamp as :class:`Event` does, without its range check; return it in UTC.

    Accepts an aware datetime (a naive one is taken as UTC), an ISO 8601 string or epoch
    seconds.

    Raises
    ------
    InvalidEvent
        Naming ``timestamp``, if the value is none of those.
    """
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, str):
        moment = _parse_iso(value)
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        moment = _from_epoch(float(value))
    else:
        raise InvalidEvent(
            "timestamp", f"must be an ISO 8601 string or epoch seconds, not {_kind(value)}"
        )
    if moment.tzinfo is not timezone.utc:
        moment = moment.astimezone(timezone.utc)
    return moment


def _to_timestamp(value: object) -> datetime:
    moment = parse_timestamp(value)
    if moment < _EARLIEST:
        raise InvalidEvent("timestamp", f"{moment.isoformat()} is before 2000-01-01")
    if moment > _latest_allowed(moment):
        raise InvalidEvent("timestamp", f"{moment.isoformat()} is more than a day in the future")
    return moment


_latest_seen_limit = datetime.now(timezone.utc) + _FUTURE_SLACK


def _latest_allowed(moment: datetime) -> datetime:
    """Return "now + 1 day", reading the clock only when ``moment`` is near that limit.

    The cached limit only ever lags behind the true one, so a moment under it is surely
    allowed; for any other, the clock is read again and the answer is exact.
    """
    global _latest_seen_limit
    if moment > _latest_seen_limit:
        _latest_seen_limit = datetime.now(timezone.utc) + _FUTURE_SLACK
    return _latest_seen_limit


def _parse_iso(text: str) -> datetime:
    # Python < 3.11 does not read a trailing "Z".
    cleaned = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    if sys.version_info < (3, 11):
        cleaned = _as_python_310_reads(cleaned)
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise InvalidEvent("timestamp", f"{text[:80]!r} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_FRACTION: Final = re.compile(r"([T ]\d{2}:\d{2}:\d{2})\.(\d+)")
_COMPACT_OFFSET: Final = re.compile(r"([+-]\d{2})(\d{2})$")


def _as_python_310_reads(text: str) -> str:
    """The forms Python 3.11 reads that 3.10 does not, rewritten: fractions of a second of
    any length (3.10 takes 3 or 6 digits) and offsets without a colon (``+0100``)."""
    text = _FRACTION.sub(lambda m: f"{m[1]}.{(m[2] + '00000')[:6]}", text, count=1)
    return _COMPACT_OFFSET.sub(r"\1:\2", text)


def _from_epoch(seconds: float) -> datetime:
    if not math.isfinite(seconds):
        raise InvalidEvent("timestamp", "must be a finite number of epoch seconds")
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidEvent("timestamp", f"{seconds!r} epoch seconds is out of range") from None


def _to_number(
    field: str, value: object, *, minimum: float | None, inclusive: bool
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidEvent(field, f"must be a number, not {_kind(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent(field, f"must be finite, not {number}")
    if minimum is not None:
        if inclusive and number < minimum:
            raise InvalidEvent(field, f"must not be negative, not {number:g}")
        if not inclusive and number <= minimum:
            raise InvalidEvent(field, f"must be positive, not {number:g}")
    return value if isinstance(value, int) else number


def _to_currency(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise InvalidEvent("currency", f"must be a three-letter ISO 4217 code, not {value!r:.40}")
    return value.upper()


def _to_json_object(field: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEvent(field, f"must be a JSON object, not {_kind(value)}")
    if not value:
        return {}
    if not all(isinstance(key, str) for key in value):
        raise InvalidEvent(field, "keys must be strings")
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent(field, f"is not JSON-serializable: {exc}") from None
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidEvent(field, "has text that is not valid Unicode (a lone surrogate)") from None
    if size > MAX_JSON_BYTES:
        raise InvalidEvent(field, f"is {size} bytes as JSON; the limit is {MAX_JSON_BYTES}")
    return dict(value)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@attrs.frozen(init=False)
class Event:
    """One thing a shopper did: viewed a product, added it to the cart, bought it...

    Building an event validates and normalizes every field; anything wrong raises
    :class:`~recsdk.errors.InvalidEvent` that names the field and the reason.

    Parameters
    ----------
    type:
        ``page``, ``view``, ``click``, ``add_to_cart``, ``remove_from_cart``, ``purchase``,
        ``search``, ``rate``, ``wishlist``, ``refund``; a Segment e-commerce name such as
        ``"Product Viewed"``; or a custom type named ``"x-..."``.
    user_id, anonymous_id:
        Who did it: the shop's user id once known, else the visitor's anonymous id. At least
        one is required; integers are turned into strings.
    item_id:
        The product; required for item-level types (all but ``page`` and ``search``).
    timestamp:
        When it happened: an aware datetime (a naive one is taken as UTC), an ISO 8601 string
        or epoch seconds. Defaults to now. Stored as UTC.
    event_id:
        A UUID made by the client so that a retried event is stored once. Defaults to a new
        time-ordered UUID.
    quantity, price, currency, order_id:
        Cart and order lines. A ``purchase`` is one event per order line and needs an
        ``order_id``.
    value:
        The event's number: the rating of a ``rate`` event (required there).
    session_id, rec_id:
        The visit, and the recommendation list the event came from (for attribution).
    properties, context:
        JSON objects of at most 32 KB each. ``context`` holds where the event came from:
        ``page_url``, ``referrer``, ``user_agent``, ``ip``.
    """

    type: str
    user_id: str | None
    anonymous_id: str | None
    item_id: str | None
    timestamp: datetime
    event_id: str
    quantity: float | None
    price: float | None
    currency: str | None
    order_id: str | None
    value: float | None
    session_id: str | None
    rec_id: str | None
    properties: dict[str, Any]
    context: dict[str, Any]

    # Written by hand rather than generated with attrs converters: events are built on
    # the request path of the host app, and checking only the fields given is several
    # times faster than converting all fifteen.
    def __init__(
        self,
        type: str,
        *,
        user_id: str | int | None = None,
        anonymous_id: str | int | None = None,
        item_id: str | int | None = None,
        timestamp: datetime | str | float | None = None,
        event_id: str | UUID | None = None,
        quantity: float | None = None,
        price: float | None = None,
        currency: str | None = None,
        order_id: str | int | None = None,
        value: float | None = None,
        session_id: str | int | None = None,
        rec_id: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        put = object.__setattr__
        put(self, "type", normalize_type(type))
        put(self, "user_id", None if user_id is None else _to_id("user_id", user_id))
        put(
            self,
            "anonymous_id",
            None if anonymous_id is None else _to_id("anonymous_id", anonymous_id),
        )
        put(self, "item_id", None if item_id is None else _to_id("item_id", item_id))
        put(self, "timestamp", _utcnow() if timestamp is None else _to_timestamp(timestamp))
        put(self, "event_id", new_event_id() if event_id is None else _to_event_id(event_id))
        put(self, "quantity", _to_number("quantity", quantity, minimum=0.0, inclusive=False))
        put(self, "price", _to_number("price", price, minimum=0.0, inclusive=True))
        put(self, "currency", _to_currency(currency))
        put(self, "order_id", None if order_id is None else _to_id("order_id", order_id))
        put(self, "value", _to_number("value", value, minimum=None, inclusive=True))
        put(self, "session_id", None if session_id is None else _to_id("session_id", session_id))
        put(self, "rec_id", None if rec_id is None else _to_id("rec_id", rec_id))
        put(self, "properties", _to_json_object("properties", properties))
        put(self, "context", _to_json_object("context", context))
        self._check_required_fields()

    def _check_required_fields(self) -> None:
        if self.user_id is None and self.anonymous_id is None:
            raise InvalidEvent("user_id", "an event needs a user_id or an anonymous_id")
        if self.item_id is None and self.type in ITEM_EVENT_TYPES:
            raise InvalidEvent("item_id", f"a {self.type!r} event needs an item_id")
        if self.order_id is None and self.type == "purchase":
            raise InvalidEvent("order_id", "a 'purchase' event needs an order_id")
        if self.value is None and self.type == "rate":
            raise InvalidEvent("value", "a 'rate' event needs a value (the rating)")

    @property
    def type_code(self) -> TypeCode:
        """The small integer the store keeps for this event's type."""
        return BUILTIN_TYPE_CODES.get(self.type, TypeCode.custom)

    @classmethod
    def from_dict(cls, data: object) -> Event:
        """Read an event in the wire format (the JSON object :meth:`to_dict` writes).

        Raises
        ------
        InvalidEvent
            If ``data`` is not a JSON object, has an unknown field, or any field is invalid.
        """
        if not isinstance(data, Mapping):
            raise InvalidEvent("event", f"must be a JSON object, not {_kind(data)}")
        for key in data:
            if key not in _FIELD_NAMES:
                raise InvalidEvent(str(key)[:80] or '""', _unknown_field_reason(key))
        if "type" not in data:
            raise InvalidEvent("type", "is required")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Return the event in the wire format: a JSON-ready dict without empty fields."""
        out: dict[str, Any] = {"event_id": self.event_id, "type": self.type}
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None and value != {}:
                out[name] = value
        out["timestamp"] = format_timestamp(self.timestamp)
        return out


_FIELD_NAMES: Final = frozenset(field.name for field in attrs.fields(Event))
_OPTIONAL_FIELDS: Final = tuple(
    field.name
    for field in attrs.fields(Event)
    if field.name not in {"event_id", "type", "timestamp"}
)


def _unknown_field_reason(key: object) -> str:
    close = difflib.get_close_matches(str(key), sorted(_FIELD_NAMES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; put custom data in 'properties'"
    return f"is not a field of an event{hint}"


def format_timestamp(moment: datetime) -> str:
    """``moment`` (aware, UTC) as the wire format writes times: ISO 8601 ending in ``Z``."""
    return moment.isoformat().replace("+00:00", "Z")


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of one event in the wire format.

    It ships in the package as ``recsdk/schema/event.schema.json``.
    """
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


@functools.cache
def _schema_text() -> str:
    return resources.files("recsdk").joinpath("schema/event.schema.json").read_text("utf-8")
