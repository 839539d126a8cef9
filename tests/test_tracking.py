"""The tracking clients against the real collector on 127.0.0.1, faults injected in front."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import pytest
from conftest import serve_wsgi
from hypothesis import given, settings
from hypothesis import strategies as st

from recsdk import Event, EventStore
from recsdk.collector import CollectorConfig, wsgi_app
from recsdk.tracking import AsyncTracker, Tracker
from recsdk.tracking.validation import checked, wire_form

KEY = "wk_test"
WSGIApp = Callable[[dict[str, Any], Any], Any]


@pytest.fixture
def store(sqlite_url: str) -> Iterator[EventStore]:
    with EventStore(sqlite_url) as event_store:
        yield event_store


@pytest.fixture
def collector_app(store: EventStore) -> WSGIApp:
    return wsgi_app(store, config=CollectorConfig(write_keys=[KEY]))


@pytest.fixture
def endpoint(collector_app: WSGIApp) -> Iterator[str]:
    with serve_wsgi(collector_app) as base:
        yield f"{base}/recsdk"


class Faults:
    """WSGI middleware before the real collector: the first answers are failures."""

    def __init__(self, app: WSGIApp, plan: list[str]) -> None:
        self.app = app
        self.plan = list(plan)
        self.requests = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            self.requests += 1
            fault = self.plan.pop(0) if self.plan else "pass"
        if fault == "500":
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"boom"]
        if fault == "429":
            start_response("429 Too Many Requests", [("Retry-After", "0")])
            return [b""]
        if fault == "stall":
            time.sleep(1.5)  # longer than the client's timeout
        if fault == "lost":  # stored, but the answer never reaches the client
            list(self.app(environ, lambda *args: None))
            start_response("502 Bad Gateway", [])
            return [b""]
        return self.app(environ, start_response)


def tracked_items(store: EventStore) -> list[str]:
    return store.item_ids(store.interactions().items)  # type: ignore[return-value]


def test_events_arrive_in_batches(endpoint: str, store: EventStore) -> None:
    tracker = Tracker(endpoint, KEY, batch_size=100, flush_interval=60)
    for i in range(250):
        tracker.track("view", user_id=f"u{i % 7}", item_id=f"sku-{i}")
    assert tracker.flush(timeout=20)
    assert store.counts().events == 250
    stats = tracker.stats()
    assert (stats["queued"], stats["sent"], stats["dropped"]) == (250, 250, 0)
    tracker.shutdown()


def test_the_interval_sends_a_partial_batch(endpoint: str, store: EventStore) -> None:
    tracker = Tracker(endpoint, KEY, flush_interval=0.2)
    tracker.track("view", user_id="u1", item_id="sku-1")
    deadline = time.monotonic() + 10
    while store.counts().events == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.counts().events == 1
    tracker.shutdown()


def test_faults_are_retried_and_nothing_is_stored_twice(
    collector_app: WSGIApp, store: EventStore
) -> None:
    faults = Faults(collector_app, ["500", "429", "stall", "lost", "500"])
    with serve_wsgi(faults) as base:
        tracker = Tracker(f"{base}/recsdk", KEY, batch_size=50, timeout=1.0, flush_interval=60)
        for i in range(120):
            tracker.track("view", user_id="u1", item_id=f"sku-{i}")
        assert tracker.flush(timeout=60)
        tracker.shutdown()
    assert store.counts().events == 120  # the "lost" batch was stored once, not twice
    assert sorted(tracked_items(store)) == sorted(f"sku-{i}" for i in range(120))
    stats = tracker.stats()
    assert stats["sent"] == 120
    assert stats["retries"] >= 5
    assert stats["dropped"] == 0


def test_no_retry_on_a_client_error(endpoint: str) -> None:
    reports: list[tuple[str, int]] = []
    tracker = Tracker(
        endpoint, "wrong key", on_error=lambda reason, events: reports.append((reason, len(events)))
    )
    tracker.track("view", user_id="u1", item_id="sku-1")
    tracker.flush(timeout=10)
    assert reports == [("batch not delivered (last status 401: unknown write key)", 1)]
    assert tracker.stats()["retries"] == 0
    tracker.shutdown()


def test_invalid_and_rejected_events_are_reported_not_raised(endpoint: str) -> None:
    reports: list[str] = []
    tracker = Tracker(endpoint, KEY, on_error=lambda reason, events: reports.append(reason))
    tracker.track("view", user_id="u1")  # no item: invalid, never sent
    tracker.track("nonsense", user_id="u1")
    tracker.track("view", user_id="u1", itemid="sku-1")  # a misspelt field
    tracker.track("view", user_id="u1", item_id="ok")
    tracker.flush(timeout=10)
    assert reports == [
        "invalid event: item_id: a 'view' event needs an item_id",
        reports[1],
        "invalid event: itemid: is not a field of an event; did you mean 'item_id'?",
    ]
    assert reports[1].startswith("invalid event: type: unknown event type")
    assert tracker.stats()["invalid"] == 3
    assert tracker.stats()["sent"] == 1
    tracker.shutdown()


def test_a_full_queue_drops_and_counts_without_blocking() -> None:
    gate = threading.Event()

    def blocked(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return httpx.Response(200, json={"results": []})

    dropped: list[int] = []
    tracker = Tracker(
        "http://127.0.0.1:9/recsdk",
        max_queue=5,
        batch_size=1,
        transport=httpx.MockTransport(blocked),
        on_error=lambda reason, events: dropped.append(len(events)),
    )
    start = time.perf_counter()
    for i in range(50):
        tracker.track("view", user_id="u1", item_id=f"sku-{i}")
    assert time.perf_counter() - start < 1.0  # track() never waited for the network
    stats = tracker.stats()
    assert stats["dropped"] >= 40
    assert stats["dropped"] + stats["queued"] == 50
    assert sum(dropped) == stats["dropped"]
    gate.set()
    tracker.shutdown(timeout=5)


def test_an_on_error_that_raises_does_not_escape() -> None:
    def explode(reason: str, events: list[dict[str, Any]]) -> None:
        raise RuntimeError("the callback is broken")

    tracker = Tracker("http://127.0.0.1:9/recsdk", on_error=explode, sync_mode=True)
    tracker.track("view", user_id="u1")  # invalid: reported to a callback that raises
    assert tracker.stats()["invalid"] == 1


def test_sync_mode_sends_before_returning(endpoint: str, store: EventStore) -> None:
    tracker = Tracker(endpoint, KEY, sync_mode=True)
    tracker.track("purchase", user_id="u1", item_id="sku-1", order_id="o1", price=3.5)
    assert store.counts().events == 1
    assert tracker.stats()["sent"] == 1


def run_script(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_events_are_sent_at_exit(endpoint: str, store: EventStore) -> None:
    done = run_script(
        """
        import sys
        from recsdk.tracking import Tracker
        tracker = Tracker(sys.argv[1], "wk_test", flush_interval=60)
        for i in range(30):
            tracker.track("view", user_id="u1", item_id=f"sku-{i}")
        # no flush: the exit handler sends what is left
        """,
        endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert store.counts().events == 30


def test_forked_workers_lose_nothing(endpoint: str, store: EventStore) -> None:
    done = run_script(
        """
        import os, sys
        from recsdk.tracking import Tracker
        tracker = Tracker(sys.argv[1], "wk_test", flush_interval=60)
        tracker.track("page", user_id="master")  # the master tracks before forking
        children = []
        for worker in range(3):
            pid = os.fork()
            if pid == 0:  # a preforked worker: its own thread, then a normal exit
                for i in range(50):
                    tracker.track("view", user_id=f"worker-{worker}", item_id=f"sku-{i}")
                sys.exit(0)
            children.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        sys.exit(max(codes))
        """,
        endpoint,
    )
    assert done.returncode == 0, done.stderr
    # 150 worker events, and the master's page view once (each child had a copy of it
    # queued: the copies share its event_id, so the store keeps one).
    assert store.counts().events == 151
    assert store.counts().users == 4


def test_the_async_tracker(endpoint: str, store: EventStore) -> None:
    async def main() -> dict[str, int]:
        tracker = AsyncTracker(endpoint, KEY, flush_interval=60)
        for i in range(150):
            tracker.track("view", user_id="u1", item_id=f"sku-{i}")
        tracker.track("view", user_id="u1")  # invalid: counted, not raised
        assert await tracker.flush(timeout=20)
        await tracker.aclose()
        return tracker.stats()

    stats = asyncio.run(main())
    assert store.counts().events == 150
    assert (stats["sent"], stats["invalid"]) == (150, 1)


def test_the_async_tracker_retries(collector_app: WSGIApp, store: EventStore) -> None:
    faults = Faults(collector_app, ["500", "lost"])

    async def main() -> None:
        tracker = AsyncTracker(f"{base}/recsdk", KEY, batch_size=10)
        for i in range(25):
            tracker.track("view", user_id="u1", item_id=f"sku-{i}")
        assert await tracker.flush(timeout=30)
        await tracker.aclose()

    with serve_wsgi(faults) as base:
        asyncio.run(main())
    assert store.counts().events == 25


def test_tracking_stays_light() -> None:
    code = (
        "import sys, recsdk.tracking\n"
        "heavy = ('numba', 'sqlalchemy', 'recsdk.store', 'recsdk.engine', 'numpy')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- track()'s quick validation agrees with Event --------------------------------------------

ids = st.one_of(
    st.none(), st.text(max_size=300), st.integers(), st.booleans(), st.floats(), st.just("")
)
numbers = st.one_of(
    st.none(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
json_objects = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=10), scalars, max_size=4),
    st.dictionaries(st.text(max_size=5), st.lists(scalars, max_size=3), max_size=2),
    st.dictionaries(st.integers(), scalars, min_size=1, max_size=2),
    st.just({"big": "x" * 40_000}),
    st.just({"many": "\u00e9" * 6_000}),  # under 32 KB by character count, over it in UTF-8
    st.lists(scalars, max_size=2),
)
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "user_id": ids,
        "anonymous_id": ids,
        "item_id": ids,
        "order_id": ids,
        "session_id": ids,
        "rec_id": ids,
        "quantity": numbers,
        "price": numbers,
        "value": numbers,
        "currency": st.one_of(st.none(), st.text(max_size=4), st.sampled_from(["eur", "USD"])),
        "properties": json_objects,
        "context": json_objects,
        "timestamp": st.one_of(st.none(), st.just("2024-05-01T10:00:00Z")),
        "colour": st.just("red"),
    },
)
kinds = st.one_of(
    st.sampled_from(
        ["view", "page", "purchase", "rate", "search", "Product Viewed", " VIEW ", "x-promo"]
    ),
    st.sampled_from(["nonsense", "", "x-"]),
    st.integers(),
    st.none(),
)


def outcome(build: Callable[[], dict[str, Any]]) -> tuple[str, Any]:
    try:
        wire = build()
    except Exception as error:
        return type(error).__name__, str(error)
    return "ok", {k: v for k, v in wire.items() if k not in ("event_id", "timestamp")}


@settings(max_examples=400, deadline=None)
@given(kinds, event_fields)
def test_quick_validation_accepts_and_rejects_what_event_does(
    kind: Any, fields: dict[str, Any]
) -> None:
    quick = outcome(lambda: wire_form(checked(kind, fields)))
    full = outcome(lambda: Event.from_dict({**fields, "type": kind}).to_dict())
    assert quick == full
    if quick[0] == "ok":
        wire = wire_form(checked(kind, fields))
        assert Event.from_dict(wire).to_dict() == wire


def test_the_usual_event_takes_the_quick_path_and_gets_a_uuid7_and_the_time() -> None:
    before = datetime.now(timezone.utc)
    item = checked("view", {"user_id": "u1", "item_id": "sku-1", "properties": {"pos": 3}})
    assert isinstance(item, tuple)  # no Event built in the caller
    wire = wire_form(item)
    event_id = UUID(wire["event_id"])
    assert (event_id.version, event_id.variant) == (7, "specified in RFC 4122")
    moment = datetime.fromisoformat(wire["timestamp"].replace("Z", "+00:00"))
    assert before - timedelta(milliseconds=1) <= moment <= datetime.now(timezone.utc)
    assert wire == {**wire, "type": "view", "user_id": "u1", "properties": {"pos": 3}}
    later = wire_form(checked("view", {"user_id": "u1", "item_id": "sku-1"}))
    assert later["event_id"][:13] >= wire["event_id"][:13]  # the milliseconds come first
    assert isinstance(checked("view", {"user_id": "u1", "item_id": "1", "timestamp": 1e9}), Event)


# -- the worker -----------------------------------------------------------------------------


class Recorder:
    """A mock collector that keeps every batch it is sent."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(gzip.decompress(request.content))
        self.batches.append(body["batch"])
        return httpx.Response(200, json={"results": []})


def test_full_batches_go_at_once_and_the_rest_at_the_interval() -> None:
    recorder = Recorder()
    tracker = Tracker(
        "http://127.0.0.1:9/recsdk",
        transport=httpx.MockTransport(recorder),
        batch_size=100,
        flush_interval=0.5,
    )
    for i in range(250):
        tracker.track("view", user_id="u1", item_id=f"sku-{i}")
    deadline = time.monotonic() + 10
    while len(recorder.batches) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(batch) for batch in recorder.batches] == [100, 100]  # the 50 wait
    while len(recorder.batches) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [len(batch) for batch in recorder.batches] == [100, 100, 50]
    sent = [event["item_id"] for batch in recorder.batches for event in batch]
    assert sent == [f"sku-{i}" for i in range(250)]  # in order, each once
    tracker.shutdown()


def test_a_tracker_keeps_working_after_shutdown() -> None:
    recorder = Recorder()
    tracker = Tracker("http://127.0.0.1:9/recsdk", transport=httpx.MockTransport(recorder))
    tracker.track("view", user_id="u1", item_id="sku-1")
    assert tracker.shutdown(timeout=5)
    tracker.track("view", user_id="u1", item_id="sku-2")  # e.g. from a later atexit hook
    assert tracker.flush(timeout=5)
    assert [event["item_id"] for batch in recorder.batches for event in batch] == [
        "sku-1",
        "sku-2",
    ]
    tracker.shutdown()


def test_a_lone_surrogate_is_invalid_and_does_not_sink_its_batch() -> None:
    recorder = Recorder()
    tracker = Tracker("http://127.0.0.1:9/recsdk", transport=httpx.MockTransport(recorder))
    tracker.track("view", user_id="u\udc80", item_id="sku-1")  # no UTF-8 can hold it
    tracker.track("view", user_id="u2", item_id="sku-2")
    assert tracker.flush(timeout=5)
    assert [event["user_id"] for event in recorder.batches[0]] == ["u2"]
    assert tracker.stats()["invalid"] == 1
    assert tracker.stats()["sent"] == 1
    tracker.shutdown()
