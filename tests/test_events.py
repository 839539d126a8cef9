"""The event model: normalization, validation errors, the wire format and its JSON Schema."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsdk import Event, InvalidEvent, RecsdkError, TypeCode
from recsdk.events import (
    ITEM_EVENT_TYPES,
    MAX_ID_LENGTH,
    json_schema,
    new_event_id,
    normalize_type,
    type_code,
)

NOW = datetime.now(timezone.utc)


def event(**fields: Any) -> Event:
    base: dict[str, Any] = {"type": "view", "user_id": "u1", "item_id": "sku-1"}
    base.update(fields)
    return Event.from_dict({k: v for k, v in base.items() if v is not ...})


def rejects(field: str, **fields: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        event(**fields)
    assert caught.value.field == field, caught.value
    assert isinstance(caught.value, RecsdkError)
    assert isinstance(caught.value, ValueError)
    return caught.value


# -- types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("view", "view"),
        ("Product Viewed", "view"),
        ("product viewed", "view"),
        ("Product Clicked", "click"),
        ("Product Added", "add_to_cart"),
        ("Product Removed", "remove_from_cart"),
        ("Order Completed", "purchase"),
        ("Products Searched", "search"),
        ("Product Added to Wishlist", "wishlist"),
        ("Order Refunded", "refund"),
        ("Page Viewed", "page"),
        ("x-newsletter_signup", "x-newsletter_signup"),
    ],
)
def test_types_and_aliases_normalize(given: str, canonical: str) -> None:
    assert normalize_type(given) == canonical


def test_type_codes_are_stable() -> None:
    # Part of the storage format: a change here breaks every existing database.
    assert [(t.name, int(t)) for t in TypeCode] == [
        ("custom", 0),
        ("page", 1),
        ("view", 2),
        ("click", 3),
        ("add_to_cart", 4),
        ("remove_from_cart", 5),
        ("purchase", 6),
        ("search", 7),
        ("rate", 8),
        ("wishlist", 9),
        ("refund", 10),
    ]
    assert type_code("Order Completed") is TypeCode.purchase
    assert type_code("x-shared") is TypeCode.custom
    assert event(type="x-shared").type_code is TypeCode.custom


@pytest.mark.parametrize("bad", ["viewed", "", "x-", "x-!", "Product Exploded", 3, None])
def test_unknown_type_is_rejected(bad: object) -> None:
    error = rejects("type", type=bad)
    assert "type" in str(error)


def test_a_custom_type_fits_the_store_s_64_characters() -> None:
    assert Event("x-" + "a" * 62, user_id="u1").type == "x-" + "a" * 62
    error = rejects("type", type="x-" + "a" * 63)
    assert "at most 64 characters, not 65" in str(error)
    VALIDATOR.validate({"type": "x-" + "a" * 62, "user_id": "u1"})
    assert not VALIDATOR.is_valid({"type": "x-" + "a" * 63, "user_id": "u1"})


def test_missing_type_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="type: is required"):
        Event.from_dict({"user_id": "u1"})


# -- required fields ---------------------------------------------------------------------


def test_needs_a_user_or_an_anonymous_id() -> None:
    error = rejects("user_id", user_id=None)
    assert "anonymous_id" in error.reason
    assert event(user_id=None, anonymous_id="a-1").anonymous_id == "a-1"


@pytest.mark.parametrize("kind", sorted(ITEM_EVENT_TYPES))
def test_item_level_types_need_an_item(kind: str) -> None:
    fields: dict[str, Any] = {"order_id": "o1", "value": 4}
    rejects("item_id", type=kind, item_id=None, **fields)


@pytest.mark.parametrize("kind", ["page", "search", "x-custom"])
def test_page_and_search_need_no_item(kind: str) -> None:
    assert event(type=kind, item_id=None).item_id is None


def test_purchase_needs_an_order() -> None:
    rejects("order_id", type="purchase")
    assert event(type="purchase", order_id="o-1").order_id == "o-1"


def test_rate_needs_a_value() -> None:
    rejects("value", type="rate")
    assert event(type="rate", value=4.5).value == 4.5


# -- ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field", ["user_id", "anonymous_id", "item_id", "order_id", "session_id", "rec_id"]
)
def test_ids_are_checked(field: str) -> None:
    rejects(field, **{field: "x" * (MAX_ID_LENGTH + 1)})
    rejects(field, **{field: "bad\nid"})
    rejects(field, **{field: "bad\x00id"})
    rejects(field, **{field: "bad\x85id"})
    rejects(field, **{field: "bad\udc80id"})  # a lone surrogate cannot be stored
    rejects(field, **{field: ""})
    rejects(field, **{field: 1.5})
    rejects(field, **{field: True})
    assert getattr(event(**{field: "x" * MAX_ID_LENGTH}), field) == "x" * MAX_ID_LENGTH


def test_integer_ids_become_strings() -> None:
    assert event(user_id=42, item_id=7).user_id == "42"


def test_unicode_ids_are_kept() -> None:
    assert event(item_id="çà-🍵 ").item_id == "çà-🍵 "


# -- event_id ----------------------------------------------------------------------------


def test_event_ids_are_time_ordered_uuids() -> None:
    ids = [new_event_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(UUID(i).version == 7 for i in ids)
    first, last = UUID(ids[0]), UUID(ids[-1])
    assert first.int >> 80 <= last.int >> 80  # the millisecond prefix never goes back


def test_given_event_ids_are_normalized() -> None:
    raw = "0192F8C4-3A2B-7C3D-8E4F-5A6B7C8D9E0F"
    assert event(event_id=raw).event_id == raw.lower()
    assert event(event_id=UUID(raw)).event_id == raw.lower()
    rejects("event_id", event_id="not-a-uuid")
    rejects("event_id", event_id=12)


# -- timestamps --------------------------------------------------------------------------


def test_timestamps_in_every_accepted_form() -> None:
    expected = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)
    assert event(timestamp="2026-11-01T10:00:00Z").timestamp == expected
    assert event(timestamp="2026-11-01T11:00:00+01:00").timestamp == expected
    assert event(timestamp="2026-11-01T10:00:00").timestamp == expected  # naive means UTC
    assert event(timestamp=expected.timestamp()).timestamp == expected
    assert event(timestamp=int(expected.timestamp())).timestamp == expected
    assert event(timestamp=expected.replace(tzinfo=None)).timestamp == expected
    # Forms Python 3.11 reads and 3.10 did not (.ci/run runs this file on 3.10 too).
    assert event(timestamp="2026-11-01T10:00:00.5Z").timestamp == expected.replace(
        microsecond=500_000
    )
    assert event(timestamp="2026-11-01 10:00:00.1234567Z").timestamp == expected.replace(
        microsecond=123_456
    )
    assert event(timestamp="2026-11-01T11:00:00+0100").timestamp == expected
    moment = event().timestamp
    assert moment.tzinfo is timezone.utc
    assert abs(moment - datetime.now(timezone.utc)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "bad",
    [
        "1999-12-31T23:59:59Z",
        946684799,
        (NOW + timedelta(days=2)).isoformat(),
        (NOW + timedelta(days=2)).timestamp() * 1000,  # milliseconds, not seconds
        "yesterday",
        math.nan,
        math.inf,
        1e300,
        True,
        [2026],
    ],
)
def test_bad_timestamps_are_rejected(bad: object) -> None:
    rejects("timestamp", timestamp=bad)


def test_a_timestamp_just_under_a_day_ahead_is_accepted() -> None:
    ahead = datetime.now(timezone.utc) + timedelta(hours=23)
    assert event(timestamp=ahead).timestamp == ahead


# -- numbers -----------------------------------------------------------------------------


def test_numbers() -> None:
    line = event(type="purchase", order_id="o1", price=Decimal("9.50"), quantity=2)
    assert (line.price, line.quantity) == (9.5, 2)
    assert event(price=0).price == 0
    assert event(currency="eur").currency == "EUR"


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("price", -0.01),
        ("price", math.nan),
        ("price", math.inf),
        ("price", "9.5"),
        ("price", True),
        ("quantity", 0),
        ("quantity", -1),
        ("quantity", math.nan),
        ("value", math.inf),
        ("currency", "EURO"),
        ("currency", "E1R"),
        ("currency", 978),
    ],
)
def test_bad_numbers_are_rejected(field: str, bad: object) -> None:
    rejects(field, **{field: bad})


# -- properties and context --------------------------------------------------------------


@pytest.mark.parametrize("field", ["properties", "context"])
def test_json_objects(field: str) -> None:
    assert getattr(event(**{field: {"a": [1, "b", None]}}), field) == {"a": [1, "b", None]}
    assert getattr(event(**{field: None}), field) == {}
    rejects(field, **{field: [1, 2]})
    rejects(field, **{field: "text"})
    rejects(field, **{field: {1: "int key"}})
    rejects(field, **{field: {"set": {1, 2}}})
    rejects(field, **{field: {"nan": math.nan}})
    rejects(field, **{field: {"bytes": b"x"}})
    assert "surrogate" in rejects(field, **{field: {"text": "\ud800"}}).reason
    error = rejects(field, **{field: {"big": "x" * 33_000}})
    assert "limit" in error.reason
    assert getattr(event(**{field: {"big": "x" * 32_000}}), field)


def test_unknown_fields_are_rejected_with_a_hint() -> None:
    error = rejects("itemId", itemId="sku-2")
    assert "item_id" in error.reason
    error = rejects("color", color="red")
    assert "properties" in error.reason


def test_not_an_object() -> None:
    bad_values: list[object] = [[], "view", None, 3]
    for bad in bad_values:
        with pytest.raises(InvalidEvent) as caught:
            Event.from_dict(bad)
        assert caught.value.field == "event"


def test_invalid_event_pickles() -> None:
    import pickle

    error = InvalidEvent("item_id", "is required")
    again = pickle.loads(pickle.dumps(error))
    assert (again.field, again.reason, str(again)) == ("item_id", "is required", str(error))


# -- the wire format ---------------------------------------------------------------------


def full_event() -> Event:
    return Event(
        "purchase",
        user_id="u1",
        anonymous_id="a1",
        item_id="sku-1",
        timestamp="2026-11-01T10:00:00.123456Z",
        quantity=2,
        price=9.5,
        currency="EUR",
        order_id="o1",
        value=19,
        session_id="s1",
        rec_id="r1",
        properties={"color": "red"},
        context={"page_url": "https://shop.example/p/1", "ip": "203.0.113.0"},
    )


def test_round_trip_through_the_wire_format() -> None:
    original = full_event()
    wire = original.to_dict()
    assert wire["timestamp"] == "2026-11-01T10:00:00.123456Z"
    assert Event.from_dict(wire) == original
    minimal = Event.from_dict({"type": "page", "anonymous_id": "a"}).to_dict()
    assert set(minimal) == {"event_id", "type", "anonymous_id", "timestamp"}


def test_events_are_frozen() -> None:
    import attrs

    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        full_event().user_id = "someone else"  # type: ignore[misc]
    assert attrs.evolve(full_event(), item_id="sku-2").item_id == "sku-2"


def test_the_schema_is_a_valid_json_schema() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    json_schema()["title"] = "changed"
    assert json_schema()["title"] != "changed"  # each call gets its own copy


def test_the_schema_knows_every_type_and_alias() -> None:
    names = json_schema()["properties"]["type"]["anyOf"][0]["enum"]
    assert {normalize_type(name) for name in names} == {t.name for t in TypeCode} - {"custom"}
    from recsdk.events import _ALIASES

    assert {name.lower() for name in names} >= set(_ALIASES)


VALIDATOR = jsonschema.Draft202012Validator(
    json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def test_valid_events_match_the_schema() -> None:
    VALIDATOR.validate(full_event().to_dict())
    VALIDATOR.validate({"type": "page", "anonymous_id": "a"})
    VALIDATOR.validate({"type": "x-signup", "user_id": 42})


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "view", "user_id": "u"},
        {"type": "Order Completed", "user_id": "u", "item_id": "i"},
        {"type": "rate", "user_id": "u", "item_id": "i"},
        {"type": "view", "item_id": "i"},
        {"type": "view", "user_id": "u", "item_id": "i", "itemId": "i"},
        {"type": "view", "user_id": "u", "item_id": "i", "price": -1},
        {"type": "view", "user_id": "u", "item_id": "i", "quantity": 0},
        {"type": "view", "user_id": "u\n", "item_id": "i"},
        {"type": "view", "user_id": "u", "item_id": "i", "properties": []},
        {"type": "view", "user_id": "u", "item_id": "i", "event_id": "nope"},
        {"type": "nope", "user_id": "u"},
    ],
)
def test_what_the_schema_rejects_the_model_rejects(wire: dict[str, Any]) -> None:
    assert not VALIDATOR.is_valid(wire)
    with pytest.raises(InvalidEvent):
        Event.from_dict(wire)


# -- properties that hold for any input --------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(["view", "purchase", "Product Viewed", "x-ok", "rate", "page"]),
    st.datetimes(timezones=st.just(timezone.utc)),
    st.uuids().map(str),
    st.decimals(allow_nan=True),
    st.binary(max_size=4),
)
field_names = st.sampled_from(
    [
        "type",
        "user_id",
        "anonymous_id",
        "item_id",
        "timestamp",
        "event_id",
        "quantity",
        "price",
        "currency",
        "order_id",
        "value",
        "session_id",
        "rec_id",
        "properties",
        "context",
        "unknown",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(field_names | st.text(max_size=5), field_values, max_size=10))
def test_any_dict_is_an_event_or_an_invalid_event(data: dict[str, Any]) -> None:
    try:
        parsed = Event.from_dict(data)
    except InvalidEvent as error:
        rejected: InvalidEvent | None = error
    else:
        rejected = None
    if rejected is not None:
        assert rejected.field
        assert rejected.reason
        return
    assert Event.from_dict(parsed.to_dict()) == parsed
    VALIDATOR.validate(parsed.to_dict())


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(["view", "page", "add_to_cart", "wishlist"]),
    user=st.text(min_size=1, max_size=MAX_ID_LENGTH).filter(
        lambda s: not any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in s)
    ),
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.just(timezone.utc),
    ).filter(lambda m: m < datetime.now(timezone.utc)),
    properties=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)
def test_valid_events_survive_the_wire(
    kind: str, user: str, moment: datetime, properties: dict[str, Any]
) -> None:
    properties = {k: v for k, v in properties.items() if _finite(v)}
    original = Event(kind, user_id=user, item_id=user, timestamp=moment, properties=properties)
    assert Event.from_dict(original.to_dict()) == original
    VALIDATOR.validate(original.to_dict())


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True
