"""Privacy in the event store: export a shopper, erase a shopper, erase old events.

On real databases: SQLite files, PostgreSQL and MariaDB (see conftest.py).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from recsdk import Event, EventStore, SchemaMismatch
from recsdk.errors import ValidationError
from recsdk.events import format_timestamp
from recsdk.store import store as store_module
from recsdk.store import tables

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


def event(type: str = "view", minutes: float = 0, **fields: Any) -> Event:
    return Event(type, timestamp=T0 + timedelta(minutes=minutes), **fields)


def fill_two_shoppers(store: EventStore) -> dict[str, Event]:
    """Alice browses anonymously as a1, logs in (a1 links to her), buys; Bob browses."""
    events = {
        "a1-view": event(anonymous_id="a1", item_id="mug", minutes=0),
        "alice-login-view": event(user_id="alice", anonymous_id="a1", item_id="plate", minutes=1),
        "alice-buy": event(
            "purchase",
            user_id="alice",
            item_id="plate",
            minutes=2,
            order_id="o-1",
            price=12.5,
            quantity=2,
            properties={"coupon": "WINTER"},
            context={"ip": "203.0.113.0", "user_agent": "Firefox"},
        ),
        "alice-page": event("page", user_id="alice", minutes=3),
        "bob-view": event(user_id="bob", item_id="mug", minutes=4),
    }
    store.add_many(list(events.values()))
    return events


def _whole_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def erasure_log(store: EventStore) -> list[tuple[str, int]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.erasures.c.scope, tables.erasures.c.events).order_by(
                tables.erasures.c.id
            )
        ).all()
    return [(scope, events) for scope, events in rows]


# -- export ---------------------------------------------------------------------------------


def test_export_holds_the_persons_ids_and_every_event_oldest_first(store: EventStore) -> None:
    events = fill_two_shoppers(store)
    export = store.export_user("alice")
    assert export.user_id == "alice"
    assert export.anonymous_ids == ("a1",)
    mine = ["a1-view", "alice-login-view", "alice-buy", "alice-page"]
    assert [e.event_id for e in export.events] == [events[name].event_id for name in mine]
    assert export.events[2] == events["alice-buy"]  # every field comes back
    assert export == store.export_user(anonymous_id="a1")  # the same person
    assert store.shopper_ids(anonymous_id="a1") == ("alice", ("a1",))
    assert store.shopper_ids("carol") == ("carol", ())


def test_an_export_is_json_ready(store: EventStore) -> None:
    fill_two_shoppers(store)
    export = store.export_user("alice")
    exported = json.loads(json.dumps(export.to_dict()))
    assert exported["user_id"] == "alice"
    assert exported["anonymous_ids"] == ["a1"]
    purchase = exported["events"][2]
    assert purchase["order_id"] == "o-1"
    assert purchase["properties"] == {"coupon": "WINTER"}
    assert purchase["timestamp"] == "2026-11-01T12:02:00Z"
    assert purchase["received_at"] == format_timestamp(export.received_at[2])
    assert exported["linked_at"] == {"a1": format_timestamp(export.linked_at["a1"])}
    wire = {name: value for name, value in purchase.items() if name != "received_at"}
    assert Event.from_dict(wire) == export.events[2]


def test_an_export_says_when_events_arrived_and_ids_were_linked(store: EventStore) -> None:
    before = _whole_millis(datetime.now(timezone.utc))  # the store keeps milliseconds
    store.add(event(anonymous_id="a1", item_id="mug"))
    between = _whole_millis(datetime.now(timezone.utc))
    store.add(event(user_id="alice", anonymous_id="a1", item_id="plate", minutes=1))
    after = datetime.now(timezone.utc)
    export = store.export_user("alice")
    first, second = export.received_at
    assert before <= first <= between <= second <= after
    assert between <= export.linked_at["a1"] <= after
    visitor_alone = store.export_user(anonymous_id="a7")
    assert (visitor_alone.received_at, dict(visitor_alone.linked_at)) == ((), {})


def test_an_unknown_shopper_exports_no_events(store: EventStore) -> None:
    fill_two_shoppers(store)
    assert store.export_user("carol").events == ()
    assert store.export_user(anonymous_id="a9").anonymous_ids == ("a9",)


def test_a_visitor_never_linked_is_exported_alone(store: EventStore) -> None:
    store.add(event(anonymous_id="a7", item_id="mug"))
    export = store.export_user(anonymous_id="a7")
    assert (export.user_id, export.anonymous_ids, len(export.events)) == (None, ("a7",), 1)


def test_shopper_ids_are_checked(store: EventStore) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        store.export_user("")
    with pytest.raises(ValidationError, match="anonymous_id"):
        store.erase_user(anonymous_id="a\x00")
    with pytest.raises(TypeError, match="exactly one"):
        store.erase_user()
    assert store.export_user(42).user_id == "42"  # type: ignore[arg-type]  # as in events


# -- erasing a shopper -------------------------------------------------------------------------


def test_erasing_deletes_the_persons_events_and_links_and_nothing_else(
    store: EventStore,
) -> None:
    events = fill_two_shoppers(store)
    assert store.erase_user("alice") == 4
    counts = store.counts()
    assert (counts.events, counts.identity_links) == (1, 0)
    assert store.export_user("alice").events == ()
    assert store.history(anonymous_id="a1") == []
    assert [e.event_id for e in store.export_user("bob").events] == [events["bob-view"].event_id]
    data = store.interactions()
    assert store.user_ids(data.users) == ["bob"]


def test_erasing_by_anonymous_id_erases_the_user_it_was_linked_to(store: EventStore) -> None:
    fill_two_shoppers(store)
    assert store.erase_user(anonymous_id="a1") == 4
    assert store.counts().events == 1


def test_another_users_events_from_a_shared_device_stay_theirs(store: EventStore) -> None:
    store.add_many(
        [
            event(user_id="alice", anonymous_id="a1", item_id="mug"),
            event(user_id="bob", anonymous_id="a1", item_id="plate", minutes=1),
        ]
    )
    assert store.history(anonymous_id="a1")[0].item_id == "mug"  # a1 is alice's (first link)
    assert store.erase_user("alice") == 1
    [left] = store.export_user("bob").events
    assert (left.item_id, left.anonymous_id) == ("plate", "a1")


def test_each_erasure_is_logged_without_whose(store: EventStore) -> None:
    fill_two_shoppers(store)
    marks = [store.interactions().erasures]
    assert marks == [0]
    store.erase_user("alice")
    marks.append(store.interactions().erasures)
    store.erase_user("carol")  # unknown: nothing erased, nothing logged
    marks.append(store.interactions().erasures)
    store.erase_user("bob")
    marks.append(store.interactions(since=10**9).erasures)
    assert erasure_log(store) == [("shopper", 4), ("shopper", 1)]
    assert marks[0] < marks[1] == marks[2] < marks[3] == store.erasure_mark()


def test_a_shopper_who_comes_back_is_counted_afresh(store: EventStore) -> None:
    fill_two_shoppers(store)
    store.erase_user("alice")
    store.add(event(user_id="alice", anonymous_id="a1", item_id="bowl", minutes=10))
    export = store.export_user(anonymous_id="a1")
    assert [e.item_id for e in export.events] == ["bowl"]
    assert (export.user_id, export.anonymous_ids) == ("alice", ("a1",))


def test_an_erased_event_retried_later_is_stored_again(store: EventStore) -> None:
    late = event(user_id="alice", item_id="mug")
    store.add(late)
    store.erase_user("alice")
    assert store.add(late) is True  # documented: stop tracking before erasing


# -- retention -----------------------------------------------------------------------------


def test_erase_before_deletes_older_events_only(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_ERASE_CHUNK", 3)  # several transactions
    old = [event(user_id=f"u{i % 3}", item_id=f"i{i}", minutes=-60 * i) for i in range(10)]
    new = [event(user_id="u9", item_id=f"n{i}", minutes=i) for i in range(4)]
    store.add_many([*old[::2], *new, *old[1::2]])  # ages mixed across the ids
    assert store.erase_before(T0 - timedelta(minutes=30)) == 9  # all but old[0]
    kept = {e.item_id for u in ("u0", "u9") for e in store.export_user(u).events}
    assert kept == {"i0", "n0", "n1", "n2", "n3"}
    assert erasure_log(store) == [("before", 9)]


def test_an_erase_before_stopped_halfway_is_logged_as_far_as_it_went(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_ERASE_CHUNK", 2)
    store.add_many([event(user_id="u", item_id=f"i{n}", minutes=-60) for n in range(6)])
    write = store._write
    transactions = []

    def failing_third() -> Any:
        transactions.append(1)
        if len(transactions) == 3:
            raise sa.exc.OperationalError("DELETE", {}, Exception("database is locked"))
        return write()

    monkeypatch.setattr(store, "_write", failing_third)
    with pytest.raises(sa.exc.OperationalError):
        store.erase_before(T0)
    monkeypatch.undo()
    assert store.counts().events == 2
    assert erasure_log(store) == [("before", 4)]  # one row for the run, added to per chunk
    assert store.interactions().erasures > 0


def test_erase_before_drops_old_links_whose_visitor_has_no_events_left(
    store: EventStore,
) -> None:
    store.add_many(
        [
            event(user_id="alice", anonymous_id="a1", item_id="mug", minutes=-600),
            event(anonymous_id="a2", item_id="mug", minutes=-600),
            event(anonymous_id="a2", item_id="bowl", minutes=10),
            event(user_id="bob", anonymous_id="a2", item_id="plate", minutes=-600),
        ]
    )
    old = store_module._millis(T0 - timedelta(days=1))
    with store.engine.begin() as conn:
        conn.execute(sa.update(tables.identity_links).values(linked_at=old))
    assert store.erase_before(T0) == 3
    assert store.counts().identity_links == 1  # a2 -> bob stays: a2 has an event left
    assert store.export_user("bob").anonymous_ids == ("a2",)


# (On SQLite the erasing writer holds the database: no link can be made meanwhile.)
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_link_made_while_a_shopper_is_erased_is_erased_too(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EventStore(store_url) as store, EventStore(store_url) as other:
        store.add(event(user_id="alice", anonymous_id="a1", item_id="mug"))
        subjects = store._subjects

        def then_a_login_elsewhere(*args: Any) -> list[int]:
            found = subjects(*args)
            other.add(event(user_id="alice", anonymous_id="a2", item_id="bowl"))
            other.add(event(anonymous_id="a2", item_id="plate", minutes=-1))
            return found

        monkeypatch.setattr(store, "_subjects", then_a_login_elsewhere)
        assert store.erase_user("alice") == 3  # with the new link, and a2's own event
        monkeypatch.undo()
        assert store.counts().events == 0
        assert store.counts().identity_links == 0


def test_erase_before_takes_strings_and_epoch_seconds(store: EventStore) -> None:
    store.add_many([event(user_id="u", item_id=f"i{d}", minutes=-1440 * d) for d in range(3)])
    assert store.erase_before("2026-10-31T00:00:00Z") == 1
    assert store.erase_before(T0.timestamp()) == 1
    assert store.erase_before(T0.replace(tzinfo=None)) == 0  # naive is UTC
    assert erasure_log(store) == [("before", 1), ("before", 1)]


def test_erase_before_on_an_empty_store_or_a_bad_moment(store: EventStore) -> None:
    assert store.erase_before(T0) == 0
    with pytest.raises(ValidationError, match="moment"):
        store.erase_before("last tuesday")
    assert erasure_log(store) == []


# -- the schema ------------------------------------------------------------------------------


def test_a_version_1_database_gains_the_erasure_log(store_url: str) -> None:
    with EventStore(store_url) as store:
        store.add(event(user_id="alice", item_id="mug"))
        with store.engine.begin() as conn:
            tables.erasures.drop(conn)
            conn.execute(sa.update(tables.schema_version).values(version=1))
    with EventStore(store_url) as store:
        assert store.erase_user("alice") == 1
        with store.engine.connect() as conn:
            assert conn.scalars(sa.select(tables.schema_version.c.version)).all() == [2]
    assert tables.SCHEMA_VERSION == 2


def test_a_version_1_database_that_cannot_be_upgraded_says_why(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with EventStore(sqlite_url) as store, store.engine.begin() as conn:
        tables.erasures.drop(conn)
        conn.execute(sa.update(tables.schema_version).values(version=1))

    def denied(conn: sa.Connection, version: int) -> None:
        raise sa.exc.ProgrammingError("CREATE TABLE", {}, Exception("permission denied"))

    monkeypatch.setattr(store_module, "_migrate", denied)
    with pytest.raises(SchemaMismatch, match="version 1, and upgrading it to version 2 failed"):
        EventStore(sqlite_url)
