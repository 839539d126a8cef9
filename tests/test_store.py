"""The event store on real databases: SQLite files, PostgreSQL and MariaDB (see conftest.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from recsdk import (
    AddResult,
    Event,
    EventStore,
    InvalidEvent,
    SchemaMismatch,
    StoreError,
    TypeCode,
)
from recsdk.catalog import CatalogItem
from recsdk.errors import InvalidItem, ValidationError
from recsdk.store import tables

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def view(user: str = "u1", item: str = "sku-1", minutes: float = 0, **fields: Any) -> Event:
    return Event(
        "view", user_id=user, item_id=item, timestamp=T0 + timedelta(minutes=minutes), **fields
    )


# -- writing -----------------------------------------------------------------------------


def test_add_many_counts_inserted_and_duplicates(store: EventStore) -> None:
    events = [view(item=f"sku-{i}", minutes=i) for i in range(5)]
    assert store.add_many(events) == AddResult(inserted=5, duplicates=0)
    again = store.add_many([*events[:3], view(item="sku-new")])
    assert (again.inserted, again.duplicates) == (1, 3)
    assert store.counts().events == 6


def test_duplicates_can_be_reported_by_position(store: EventStore) -> None:
    first, second = view(item="a"), view(item="b")
    store.add(first)
    batch: list[Any] = [second, first, {"type": "view"}, second, view(item="c")]
    result = store.add_many(batch, report_duplicates=True)
    assert (result.inserted, result.duplicates) == (2, 2)
    assert result.duplicate_indices == (1, 3)
    assert [r.index for r in result.rejected] == [2]
    assert store.add_many(batch[:2]).duplicate_indices == ()  # only when asked


def test_a_repeated_id_within_one_batch_is_stored_once(store: EventStore) -> None:
    event = view()
    result = store.add_many([event, event, event])
    assert (result.inserted, result.duplicates) == (1, 2)
    assert store.counts().events == 1


def test_add_reports_new_or_duplicate(store: EventStore) -> None:
    event = view()
    assert store.add(event) is True
    assert store.add(event.to_dict()) is False
    with pytest.raises(InvalidEvent, match="item_id"):
        store.add({"type": "view", "user_id": "u1"})


def test_invalid_dicts_are_rejected_and_valid_neighbours_stored(store: EventStore) -> None:
    batch: list[Any] = [
        view().to_dict(),
        {"type": "view", "user_id": "u1"},
        "not an event",
        view(item="sku-2"),
        {"type": "purchase", "user_id": "u1", "item_id": "sku-3", "price": -1, "order_id": "o"},
    ]
    result = store.add_many(batch)
    assert (result.inserted, result.duplicates) == (2, 0)
    assert [(r.index, r.field) for r in result.rejected] == [
        (1, "item_id"),
        (2, "event"),
        (4, "price"),
    ]
    assert store.counts().events == 2


def test_a_failed_batch_stores_nothing(store: EventStore) -> None:
    store.add(view(user="known", item="known-item"))

    def fail_on_events_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT" in statement and "recsdk_events" in statement:
            raise RuntimeError("the disk is full")

    sa.event.listen(store.engine, "before_cursor_execute", fail_on_events_insert)
    try:
        with pytest.raises(RuntimeError, match="disk is full"):
            store.add_many([view(user="new-user", item="new-item"), view(user="known")])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", fail_on_events_insert)
    counts = store.counts()
    assert (counts.events, counts.users, counts.items) == (1, 1, 1)
    # The ids made in the failed transaction were not cached: the same batch works now.
    assert store.add_many([view(user="new-user", item="new-item")]).inserted == 1
    assert store.history("new-user")[0].item_id == "new-item"


def test_every_field_is_kept(store: EventStore) -> None:
    line = Event(
        "purchase",
        user_id="u1",
        anonymous_id="a1",
        item_id="sku-1",
        timestamp=T0,
        quantity=2,
        price=9.5,
        currency="EUR",
        order_id="o-1",
        value=3.25,
        session_id="s-1",
        rec_id="r-1",
        properties={"coupon": "WINTER", "nested": {"a": [1, 2]}},
        context={"page_url": "https://shop.example/p/1", "user_agent": "Firefox"},
    )
    custom = Event("x-gift_wrap", anonymous_id="a9", item_id="sku-1", timestamp=T0)
    longest = Event("x-" + "w" * 62, anonymous_id="a9", item_id="sku-1", timestamp=T0)
    store.add_many([line, custom, longest])
    stored = {e.event_id: e for e in store.item_events("sku-1")}
    assert stored == {line.event_id: line, custom.event_id: custom, longest.event_id: longest}


def test_ids_are_exact_strings(store: EventStore) -> None:
    # MySQL and MariaDB would fold case and trailing spaces without binary ids.
    names = ["sku-1", "SKU-1", "sku-1 ", "ßku-1", "sku-1\u00a0", "\uff33\uff2b\uff35-1", "🍵"]
    store.add_many([view(item=name, minutes=i) for i, name in enumerate(names)])
    assert store.counts().items == len(names)
    assert [h.item_id for h in store.history("u1")] == names[::-1]


def test_sql_injection_is_stored_as_data(store: EventStore) -> None:
    evil = "x'); DROP TABLE recsdk_events; --"
    store.add_many([view(user=evil, item=evil, properties={evil: evil})])
    assert store.history(evil)[0].item_id == evil
    assert store.item_events(evil)[0].properties == {evil: evil}
    assert store.counts().events == 1


def test_large_batches_span_several_round_trips(store: EventStore) -> None:
    events = [view(user=f"u{i % 700}", item=f"sku-{i % 1300}", minutes=i) for i in range(12_000)]
    assert store.add_many(events).inserted == 12_000
    assert store.add_many(events[5_000:7_000]).duplicates == 2_000
    counts = store.counts()
    assert (counts.events, counts.users, counts.items) == (12_000, 700, 1300)
    again = store.add_many([*events, view(item="new")], report_duplicates=True)
    assert again.duplicate_indices == tuple(range(12_000))


# -- schema ------------------------------------------------------------------------------


def test_an_unknown_schema_version_is_refused(store_url: str) -> None:
    with EventStore(store_url) as store, store.engine.begin() as conn:
        conn.execute(sa.update(tables.schema_version).values(version=99))
    with pytest.raises(SchemaMismatch, match="version 99"):
        EventStore(store_url)


def test_a_closed_store_says_so(store_url: str) -> None:
    store = EventStore(store_url)
    store.add(view())
    store.item_event_rows("u1")  # the per-thread reader on SQLite
    store.close()
    for call in (
        lambda: store.add(view(item="sku-2")),
        lambda: store.history("u1"),
        lambda: store.item_event_rows("u1"),
        lambda: store.interactions(),
        lambda: store.erase_user("u1"),
    ):
        with pytest.raises(StoreError, match="is closed"):
            call()
    store.close()  # twice is fine


def test_create_false_refuses_an_empty_database(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="no recsdk tables"):
        EventStore(sqlite_url, create=False)


def test_reopening_keeps_the_data(store_url: str) -> None:
    with EventStore(store_url) as first:
        first.add(view())
    with EventStore(store_url, create=False) as second:
        assert second.counts().events == 1
        assert second.add(view(item="sku-2"))


def test_sqlite_pragmas_are_set_on_the_store_engine_only(sqlite_url: str) -> None:
    store = EventStore(sqlite_url, busy_timeout=7)
    with store.engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 7000,
        "foreign_keys": 1,
    }
    other = sa.create_engine(sqlite_url)
    with other.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    other.dispose()
    store.close()


def test_the_mariadb_url_scheme_works_too() -> None:
    from conftest import drop_tables, server_url

    url = server_url("mariadb").replace("mysql://", "mariadb://", 1)
    drop_tables(url)
    try:
        with EventStore(url) as store:
            assert store.engine.dialect.name == "mariadb"
            store.add_many([view(item="sku-1"), view(item="SKU-1")])
            assert sorted(h.item_id for h in store.history("u1")) == ["SKU-1", "sku-1"]
    finally:
        drop_tables(url)


def test_urls_get_the_installed_drivers() -> None:
    from recsdk.store.engines import normalize_url

    assert normalize_url("postgresql://h/db").drivername == "postgresql+psycopg"
    assert normalize_url("mysql://h/db").drivername == "mysql+pymysql"
    assert normalize_url("mariadb://h/db").drivername == "mariadb+pymysql"
    assert normalize_url("postgresql+psycopg2://h/db").drivername == "postgresql+psycopg2"
    with EventStore("sqlite://") as in_memory:
        assert repr(in_memory) == "EventStore('sqlite://')"
    secret = EventStore.__new__(EventStore)
    secret.url = normalize_url("postgresql://shop:hunter2@db/shop")
    assert "hunter2" not in repr(secret)


# -- reading -----------------------------------------------------------------------------


def test_history_is_newest_first_and_limited(store: EventStore) -> None:
    store.add_many(
        [
            view(item="old", minutes=0),
            view(item="new", minutes=2),
            Event("page", user_id="u1", timestamp=T0 + timedelta(minutes=3)),
            Event("add_to_cart", user_id="u1", item_id="mid", timestamp=T0 + timedelta(minutes=1)),
            view(user="someone-else", item="other"),
        ]
    )
    history = store.history("u1")
    assert [(h.item_id, h.type) for h in history] == [
        ("new", "view"),
        ("mid", "add_to_cart"),
        ("old", "view"),
    ]
    assert history[0].timestamp == T0 + timedelta(minutes=2)
    assert [h.item_id for h in store.history("u1", limit=1)] == ["new"]
    assert [h.item_id for h in store.history("u1", types=["Product Added"])] == ["mid"]
    assert [h.item_id for h in store.history("u1", types="add_to_cart")] == ["mid"]  # alone
    assert store.history("nobody") == []
    with pytest.raises(TypeError):
        store.history()
    with pytest.raises(ValidationError, match=r"^limit: "):
        store.history("u1", limit=-1)


def test_arguments_of_the_wrong_shape_are_named(store: EventStore) -> None:
    with pytest.raises(ValidationError, match=r"^events: "):
        store.add_many(view())  # type: ignore[arg-type]
    one: Any = {"type": "view", "user_id": "u1", "item_id": "i"}
    with pytest.raises(ValidationError, match=r"^events: "):
        store.add_many(one)
    with pytest.raises(ValidationError, match=r"^since: "):
        store.interactions(since="3")  # type: ignore[arg-type]
    store.upsert_items([{"item_id": "sku-1", "title": "Mug"}])
    assert list(store.get_items("sku-1")) == ["sku-1"]  # one id, not its characters


def test_identity_links_merge_histories(store: EventStore) -> None:
    anonymous = [
        Event("view", anonymous_id="a1", item_id="seen-before-login", timestamp=T0),
        Event("view", anonymous_id="a2", item_id="other-device", timestamp=T0),
    ]
    store.add_many(anonymous)
    assert [h.item_id for h in store.history(anonymous_id="a1")] == ["seen-before-login"]
    # An event that carries both ids links them.
    store.add(view(user="u1", item="after-login", minutes=1, anonymous_id="a1"))
    assert store.link_identity("a2", "u1") is True
    assert store.link_identity("a2", "u1") is False
    assert store.link_identity("a2", "u2") is False  # the first link wins
    expected = ["after-login", "other-device", "seen-before-login"]
    assert sorted(h.item_id for h in store.history("u1")) == sorted(expected)
    assert sorted(h.item_id for h in store.history(anonymous_id="a1")) == sorted(expected)
    assert store.counts().identity_links == 2
    interactions = store.interactions()
    assert len(set(interactions.users.tolist())) == 1


def test_new_ids_of_a_batch_are_numbered_in_sorted_order(store: EventStore) -> None:
    # Not in a set's order, which changes with the hash seed: the same events make the
    # same indices, and so the same ties between equal scores, in every run.
    names = [f"item-{n}" for n in (7, 3, 11, 5, 2, 13)]
    store.add_many([view(user=f"user-{name}", item=name) for name in names])
    data = store.interactions()
    by_index = sorted(zip(data.items.tolist(), store.item_ids(data.items), strict=True))
    assert [name for _, name in by_index] == sorted(names)
    users = sorted(zip(data.users.tolist(), store.user_ids(data.users), strict=True))
    assert [name for _, name in users] == sorted(f"user-{name}" for name in names)


def test_interactions_arrays(store: EventStore) -> None:
    store.add_many(
        [
            view(user="u1", item="a", minutes=0),
            Event("rate", user_id="u2", item_id="b", value=4.5, timestamp=T0),
            Event("purchase", user_id="u2", item_id="a", order_id="o", quantity=3, timestamp=T0),
            Event("search", user_id="u1", timestamp=T0),  # no item: not an interaction
        ]
    )
    data = store.interactions()
    assert len(data) == 3
    assert data.users.dtype == np.int32
    assert data.items.dtype == np.int32
    assert data.types.dtype == np.int8
    assert data.timestamps.dtype == np.float64
    assert data.values.dtype == np.float32
    users = store.user_ids(data.users)
    items = store.item_ids(data.items)
    rows = sorted(zip(users, items, data.types.tolist(), data.values.tolist(), strict=True))
    assert rows == [
        ("u1", "a", TypeCode.view, 1.0),
        ("u2", "a", TypeCode.purchase, 3.0),
        ("u2", "b", TypeCode.rate, 4.5),
    ]
    assert set(data.timestamps.tolist()) == {T0.timestamp()}
    assert data.n_users > data.users.max()
    assert data.n_items > data.items.max()


def test_interactions_read_incrementally(store: EventStore) -> None:
    assert len(store.interactions()) == 0
    store.add_many([view(item=f"sku-{i}") for i in range(10)])
    first = store.interactions()
    assert len(first) == 10
    assert len(store.interactions(since=first.watermark)) == 0
    store.add_many([view(item="sku-new", user="u-new")])
    second = store.interactions(since=first.watermark)
    assert store.item_ids(second.items) == ["sku-new"]
    assert store.user_ids(second.users) == ["u-new"]
    assert second.watermark > first.watermark
    assert len(store.interactions()) == 11


def test_interactions_read_in_parallel_match_a_serial_read(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsdk.store import store as store_module

    with EventStore(sqlite_url) as store:
        events = [
            Event(
                "purchase" if i % 7 == 0 else "view",
                user_id=f"u{i % 997}",
                item_id=f"sku-{i % 313}",
                order_id="o",
                quantity=1 + i % 3 if i % 7 == 0 else None,
                timestamp=T0 + timedelta(seconds=i),
            )
            for i in range(3_000)
        ]
        store.add_many(events)
        serial = store.interactions()
        monkeypatch.setattr(store_module, "_PARALLEL_READ_MIN", 10)
        parallel = store.interactions()
    for name in ("users", "items", "types", "timestamps", "values"):
        np.testing.assert_array_equal(getattr(parallel, name), getattr(serial, name))
    assert sorted(serial.values.tolist()).count(3.0) == sum(1 for e in events if e.quantity == 3)


def test_item_events(store: EventStore) -> None:
    store.add_many([view(user=f"u{i}", item="sku-1", minutes=i) for i in range(5)])
    store.add(view(item="sku-2"))
    events = store.item_events("sku-1", limit=3)
    assert [e.user_id for e in events] == ["u4", "u3", "u2"]
    assert store.item_events("unknown") == []


# -- catalog -----------------------------------------------------------------------------


def test_upsert_items_inserts_then_updates_the_fields_given(store: EventStore) -> None:
    written = store.upsert_items(
        [
            {
                "item_id": "sku-1",
                "title": "Red mug",
                "category": "kitchen",
                "tags": ["mug", "red"],
                "price": 9.5,
            },
            CatalogItem("sku-2", title="Blue mug", attributes={"volume_ml": 300}),
        ]
    )
    assert written == 2
    first = store.get_items(["sku-1"])["sku-1"]
    assert (first.title, first.category, first.tags, first.price, first.available) == (
        "Red mug",
        "kitchen",
        ("mug", "red"),
        9.5,
        True,
    )
    store.upsert_items([{"item_id": "sku-1", "available": False}])
    updated = store.get_items(["sku-1", "sku-2", "missing"])
    assert set(updated) == {"sku-1", "sku-2"}
    assert updated["sku-1"].available is False
    assert updated["sku-1"].title == "Red mug"  # untouched
    assert updated["sku-1"].created_at == first.created_at
    assert updated["sku-1"].updated_at is not None
    assert updated["sku-2"].attributes == {"volume_ml": 300}
    assert store.counts().catalog_items == 2
    assert store.upsert_items([]) == 0


def test_catalog_items_and_events_share_item_ids(store: EventStore) -> None:
    store.upsert_items([{"item_id": "sku-1", "title": "Red mug"}])
    store.add(view(item="sku-1"))
    assert store.counts().items == 1
    assert store.item_ids(store.interactions().items) == ["sku-1"]


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"title": "no id"}, "item_id"),
        ({"item_id": "x", "price": -1}, "price"),
        ({"item_id": "x", "tags": "mug"}, "tags"),
        ({"item_id": "x", "tags": ["ok", 3.5]}, "tags"),
        ({"item_id": "x", "available": "yes"}, "available"),
        ({"item_id": "x", "attributes": [1]}, "attributes"),
        ({"item_id": "x", "colour": "red"}, "colour"),
        ({"item_id": "x", "title": "t" * 2000}, "title"),
        ({"item_id": "x", "title": "a\x00b"}, "title"),  # PostgreSQL cannot store it
        ({"item_id": "x", "title": "a\ud800b"}, "title"),
        ("sku-1", "item"),
    ],
)
def test_invalid_items_write_nothing(store: EventStore, bad: Any, field: str) -> None:
    with pytest.raises(InvalidItem) as caught:
        store.upsert_items([{"item_id": "fine"}, bad])
    assert caught.value.field == field
    assert store.counts().catalog_items == 0
