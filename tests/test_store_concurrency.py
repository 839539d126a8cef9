"""Many writers on one store: processes and threads lose nothing, forked children work."""

from __future__ import annotations

import multiprocessing
import os
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from recsdk import Event, EventStore

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
BATCHES = 40
BATCH_SIZE = 250


def shared_event_id(batch: int, row: int) -> str:
    """An id both writers use for some events, as a client retrying to two servers would."""
    return str(uuid.UUID(int=batch * 1_000_000 + row))


def write_batches(url: str, writer: int) -> tuple[int, int]:
    """Append BATCHES batches; half of each batch's ids are shared with the other writer."""
    inserted = duplicates = 0
    with EventStore(url) as store:
        for batch in range(BATCHES):
            events = [
                Event(
                    "view",
                    # Users and items overlap between writers, so both intern the same names.
                    user_id=f"user-{(batch * 7 + row) % 300}",
                    item_id=f"sku-{(row * 13 + batch) % 500}",
                    timestamp=T0 + timedelta(seconds=batch * BATCH_SIZE + row),
                    event_id=(shared_event_id(batch, row) if row % 2 == 0 else str(uuid.uuid4())),
                )
                for row in range(BATCH_SIZE)
            ]
            result = store.add_many(events)
            inserted += result.inserted
            duplicates += result.duplicates
    return inserted, duplicates


@pytest.mark.timeout(240)
def test_two_processes_appending_at_once_lose_nothing(store_url: str) -> None:
    EventStore(store_url).close()  # create the tables first, as an app's deploy step would
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        results = list(pool.map(write_batches, [store_url, store_url], [1, 2]))
    per_writer = BATCHES * BATCH_SIZE
    shared = BATCHES * BATCH_SIZE // 2
    assert sum(inserted for inserted, _ in results) == 2 * per_writer - shared
    assert sum(duplicates for _, duplicates in results) == shared
    with EventStore(store_url) as store:
        counts = store.counts()
        assert counts.events == 2 * per_writer - shared
        assert counts.users == 300
        assert counts.items == 500
        assert len(store.interactions()) == counts.events


def test_two_processes_creating_the_tables_at_once(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        counts = list(pool.map(_open_and_count, [url] * 4))
    assert counts == [0, 0, 0, 0]


def _open_and_count(url: str) -> int:
    with EventStore(url) as store:
        return store.counts().events


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_connections(store_url: str) -> None:
    with EventStore(store_url) as store:
        store.add(Event("view", user_id="parent", item_id="sku-1", timestamp=T0))
        pid = os.fork()
        if pid == 0:  # the child: like a gunicorn worker forked after the app loaded
            code = 1
            try:
                store.add(Event("view", user_id="child", item_id="sku-1", timestamp=T0))
                code = 0 if store.counts().events == 2 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's pooled connections still work after the child used its own.
        store.add(Event("view", user_id="parent", item_id="sku-2", timestamp=T0))
        assert store.counts().events == 3


def test_threads_sharing_one_store(store: EventStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def track(thread: int) -> int:
        events = [
            Event(
                "view", user_id=f"user-{i % 50}", item_id=f"sku-{(i * thread) % 80}", timestamp=T0
            )
            for i in range(600)
        ]
        return sum(store.add_many(events[i : i + 100]).inserted for i in range(0, 600, 100))

    with ThreadPoolExecutor(4) as pool:
        inserted = sum(pool.map(track, range(1, 5)))
    assert inserted == store.counts().events == 2400
    assert store.counts().users == 50
