"""What ``track()`` does to an event before queueing it: validate it, fast, in the caller.

Building an :class:`~recsdk.events.Event` costs several microseconds, mostly in checks and
conversions that the usual call does not need (its ids are short ASCII strings, its
properties a small flat dict) and in making and formatting the id and the time. So
:func:`checked` first tries a quick path that accepts only what ``Event`` surely accepts,
unchanged, and returns a plain tuple: the wire fields, the bits of a new UUIDv7 and the
time in epoch microseconds. Anything else -- any doubt, any error -- goes through ``Event``
itself, which raises :class:`~recsdk.errors.InvalidEvent` naming the field and the reason.
The worker turns either form into the wire format with :func:`wire_form`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from recsdk.errors import InvalidEvent
from recsdk.events import ITEM_EVENT_TYPES, MAX_ID_LENGTH, MAX_JSON_BYTES, Event, normalize_type

__all__ = ["QueuedEvent", "Tracked", "checked", "wire_form"]

Tracked = tuple[dict[str, Any], int, int]
"""A quickly checked event: wire fields (no id, no time), UUIDv7 bits, epoch microseconds."""

QueuedEvent = Tracked | Event
"""What the trackers queue: a quickly checked event, or an ``Event`` for the rest."""

_IDS: Final = frozenset({"user_id", "anonymous_id", "item_id", "order_id", "session_id", "rec_id"})
_JSON_OBJECTS: Final = frozenset({"properties", "context"})
_EXACT_FLOAT: Final = 2**53  # larger ints may not survive float(), which Event applies
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
# A character takes at most 6 bytes in compact JSON (a \u00XX escape); a scalar, 24.
_MAX_CHAR_BYTES: Final = 6
_MAX_SCALAR_BYTES: Final = 24
_MAX_CACHED_TYPES: Final = 1024

_canonical_types: dict[str, str] = {}


def checked(kind: str, fields: Mapping[str, Any]) -> QueuedEvent:
    """The event to queue: quickly checked, else built (and validated) as an ``Event``.

    Raises
    ------
    InvalidEvent
        Naming the field and the reason, if the event is invalid.
    """
    quick = _quick(kind, fields)
    return quick if quick is not None else Event.from_dict({**fields, "type": kind})


def wire_form(item: QueuedEvent) -> dict[str, Any]:
    """The event in the wire format, as ``Event.to_dict`` writes it."""
    if isinstance(item, Event):
        return item.to_dict()
    fields, id_bits, micros = item
    moment = _EPOCH + timedelta(microseconds=micros)
    return {
        "event_id": _uuid_text(id_bits),
        **fields,
        "timestamp": moment.isoformat().replace("+00:00", "Z"),
    }


def _quick(kind: str, fields: Mapping[str, Any]) -> Tracked | None:
    """The tracked tuple when every field is surely valid as given, else None."""
    canonical = _canonical_type(kind)
    if canonical is None:
        return None
    wire: dict[str, Any] = {"type": canonical}
    for name, value in fields.items():
        if value is None:  # Event takes None as "not given" for every field
            continue
        if name in _IDS:
            checked_id = _quick_id(value)
            if checked_id is None:
                return None
            wire[name] = checked_id
        elif name in _JSON_OBJECTS:
            if type(value) is not dict or not _quick_json_object(value):
                return None
            if value:
                wire[name] = dict(value)
        elif not _quick_other(name, value, wire):
            return None
    if not _has_required_fields(canonical, wire):
        return None
    micros = time.time_ns() // 1000
    return wire, _uuid7_bits(micros // 1000), micros


def _canonical_type(kind: object) -> str | None:
    if type(kind) is not str:
        return None
    canonical = _canonical_types.get(kind)
    if canonical is None:
        try:
            canonical = normalize_type(kind)
        except InvalidEvent:
            return None
        if len(_canonical_types) < _MAX_CACHED_TYPES:
            _canonical_types[kind] = canonical
    return canonical


def _quick_id(value: object) -> str | None:
    """A short printable ASCII string as it is, an int as text; None for anything else."""
    if type(value) is str:
        if 0 < len(value) <= MAX_ID_LENGTH and value.isascii() and value.isprintable():
            return value
        return None
    if type(value) is int:
        return str(value)
    return None


def _quick_json_object(value: dict[Any, Any]) -> bool:
    """Whether a dict is surely a JSON object within the size limit."""
    bound = 2
    for key, item in value.items():
        if type(key) is not str:
            return False
        if type(item) is str:
            bound += _MAX_CHAR_BYTES * (len(key) + len(item)) + 6
        elif _is_small_scalar(item):
            bound += _MAX_CHAR_BYTES * len(key) + _MAX_SCALAR_BYTES
        else:
            return _fits_as_json(value)  # nested or unusual: encode it to know
    return bound <= MAX_JSON_BYTES or _fits_as_json(value)


def _is_small_scalar(item: object) -> bool:
    kind = type(item)
    if kind is int:
        return -_EXACT_FLOAT < item < _EXACT_FLOAT  # type: ignore[operator]
    if kind is float:
        return math.isfinite(item)  # type: ignore[arg-type]
    return kind is bool or item is None


def _fits_as_json(value: dict[str, Any]) -> bool:
    try:
        encoded = _ENCODER.encode(value).encode("utf-8")
    except (TypeError, ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    return len(encoded) <= MAX_JSON_BYTES


def _quick_other(name: str, value: object, wire: dict[str, Any]) -> bool:
    """Numbers and currency: put them in ``wire`` and say True when surely valid."""
    if name == "currency":
        if type(value) is str and len(value) == 3 and value.isascii() and value.isalpha():
            wire[name] = value.upper()
            return True
        return False
    kind = type(value)
    if kind is int:
        number: float = value  # type: ignore[assignment]
        if not -_EXACT_FLOAT < number < _EXACT_FLOAT:
            return False
    elif kind is float and math.isfinite(value):  # type: ignore[arg-type]
        number = value  # type: ignore[assignment]
    else:
        return False
    valid = (
        (name == "quantity" and number > 0) or (name == "price" and number >= 0) or name == "value"
    )
    if valid:
        wire[name] = value
    return valid


def _has_required_fields(canonical: str, wire: dict[str, Any]) -> bool:
    if "user_id" not in wire and "anonymous_id" not in wire:
        return False
    if canonical in ITEM_EVENT_TYPES and "item_id" not in wire:
        return False
    if canonical == "purchase" and "order_id" not in wire:
        return False
    return canonical != "rate" or "value" in wire


def _uuid7_bits(millis: int) -> int:
    """The 128 bits of a UUID version 7, as ``recsdk.events.new_event_id`` lays them out.

    The random module's global generator is reseeded in forked children, so ids stay
    unique across gunicorn workers.
    """
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | random.getrandbits(80)
    return value & ~(0xF << 76) & ~(0x3 << 62) | 0x7 << 76 | 0x2 << 62


def _uuid_text(bits: int) -> str:
    digits = f"{bits:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
