"""The store's lean reads for serving: shopper rows, item and user maps, catalog, baskets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from recsdk import Event, EventStore, TypeCode
from recsdk.store.store import _ITEM_EVENT_ROWS

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def items_of(store: EventStore, rows: list[Any]) -> list[str | None]:
    return store.item_ids(row[0] for row in rows)


def test_item_event_rows_are_newest_first_with_their_fields(store: EventStore) -> None:
    store.add_many(
        [
            Event("view", user_id="u1", item_id="a", timestamp=at(0)),
            Event("rate", user_id="u1", item_id="b", value=4.0, timestamp=at(1)),
            Event(
                "purchase",
                user_id="u1",
                item_id="c",
                order_id="o1",
                price=9.5,
                quantity=2,
                timestamp=at(2),
            ),
            Event("page", user_id="u1", timestamp=at(3)),  # no item: left out
            Event("view", user_id="u2", item_id="z", timestamp=at(4)),
        ]
    )
    rows = store.item_event_rows("u1")
    assert items_of(store, rows) == ["c", "b", "a"]
    _, code, ts, value, quantity, price, order = rows[0]
    assert (code, value, quantity, price, order) == (TypeCode.purchase, None, 2, 9.5, "o1")
    assert ts == int(at(2).timestamp() * 1000)
    assert rows[1][1] == TypeCode.rate
    assert rows[1][3] == 4.0
    assert items_of(store, store.item_event_rows("u1", limit=1)) == ["c"]
    assert store.item_event_rows("nobody") == []
    with pytest.raises(TypeError):
        store.item_event_rows()


def test_item_event_rows_follow_identity_links(store: EventStore) -> None:
    store.add_many(
        [
            Event("view", anonymous_id="a1", item_id="before-login", timestamp=at(0)),
            Event("view", anonymous_id="a2", item_id="other-device", timestamp=at(1)),
            Event("view", anonymous_id="a3", item_id="never-linked", timestamp=at(2)),
            Event("view", user_id="u1", anonymous_id="a1", item_id="login", timestamp=at(3)),
        ]
    )
    store.link_identity("a2", "u1")
    everyone = ["login", "other-device", "before-login"]
    assert items_of(store, store.item_event_rows("u1")) == everyone
    assert items_of(store, store.item_event_rows(anonymous_id="a1")) == everyone
    assert items_of(store, store.item_event_rows(anonymous_id="a3")) == ["never-linked"]
    both = store.item_event_rows("u1", anonymous_id="a3")  # not linked yet: merged here
    assert items_of(store, both) == ["login", "never-linked", "other-device", "before-login"]
    # A user id is never taken for an anonymous id of the same name.
    store.add(Event("view", anonymous_id="u1", item_id="namesake", timestamp=at(5)))
    assert items_of(store, store.item_event_rows("u1")) == everyone


def test_the_sqlite_text_and_the_core_query_agree(sqlite_url: str) -> None:
    with EventStore(sqlite_url) as store:
        store.add_many(
            [
                Event("view", anonymous_id="a1", item_id="x", timestamp=at(0)),
                Event("view", user_id="u1", anonymous_id="a1", item_id="y", timestamp=at(1)),
                Event("view", user_id="u2", item_id="z", timestamp=at(1)),
            ]
        )
        for user, visitor in [("u1", None), (None, "a1"), ("u2", "a1"), ("none", None)]:
            fast = store.item_event_rows(user, anonymous_id=visitor)
            with store.engine.connect() as conn:
                params = {"user_id": user, "anonymous_id": visitor, "limit": 500}
                core: list[Any] = [tuple(r) for r in conn.execute(_ITEM_EVENT_ROWS, params)]
            assert fast == core


def test_item_and_user_index(store: EventStore) -> None:
    store.add_many(
        [
            Event("view", user_id="u1", item_id="a"),
            Event("view", anonymous_id="v1", item_id="b"),
        ]
    )
    items = store.item_index()
    assert sorted(name for _, name in items) == ["a", "b"]
    assert [ix for ix, _ in items] == sorted(ix for ix, _ in items)
    assert store.item_ids(ix for ix, _ in items) == [name for _, name in items]
    assert store.item_index(after=items[0][0]) == items[1:]
    users = store.user_index()
    assert sorted((name, anonymous) for _, name, anonymous in users) == [
        ("u1", False),
        ("v1", True),
    ]


def test_catalog_entries_read_changes_since_a_version(store: EventStore) -> None:
    store.upsert_items([{"item_id": "a", "title": "A", "category": "c1"}])
    entries, version = store.catalog_entries()
    assert [(item.item_id, item.title) for _, item in entries] == [("a", "A")]
    assert store.item_ids([entries[0][0]]) == ["a"]
    store.upsert_items([{"item_id": "b", "title": "B", "available": False}])
    changed, newer = store.catalog_entries(version + 1)
    assert [item.item_id for _, item in changed] == ["b"]
    assert changed[0][1].available is False
    assert newer >= version
    assert store.catalog_entries(newer + 1) == ([], newer + 1)


def test_basket_rows_are_orders_and_sessions(store: EventStore) -> None:
    store.add_many(
        [
            Event("purchase", user_id="u1", item_id="a", order_id="o1", timestamp=at(0)),
            Event("purchase", user_id="u1", item_id="b", order_id="o1", timestamp=at(0)),
            Event("add_to_cart", user_id="u2", item_id="c", session_id="s1", timestamp=at(1)),
            Event("view", user_id="u2", item_id="d", session_id="s1", timestamp=at(1)),
        ]
    )
    watermark = store.interactions().watermark
    rows = store.basket_rows()
    named = [(order, session, store.item_ids([item])[0]) for order, session, item in rows]
    assert named == [("o1", None, "a"), ("o1", None, "b"), (None, "s1", "c")]
    store.add(Event("purchase", user_id="u3", item_id="e", order_id="o2", timestamp=at(2)))
    assert [row[0] for row in store.basket_rows(since=watermark)] == ["o2"]
    assert store.basket_rows(since=0, until=watermark) == rows
