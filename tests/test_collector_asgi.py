"""The ASGI front end: mounted in a FastAPI app and alone, under a real uvicorn on 127.0.0.1,
and its protocol handling (bodies in pieces, disconnects, lifespan, fuzzing) in-process."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsdk import EventStore, Recommender, Tracker
from recsdk.collector import Collector, CollectorConfig, asgi_app

APPS = Path(__file__).parent / "apps"
KEY = {"Authorization": "Bearer wk_asgi"}
EVENT = {"type": "view", "user_id": "u1", "item_id": "sku-1"}


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "recsdk.db"


def uvicorn(app: str, database: Path, workers: int = 1) -> Iterator[str]:
    """Serve ``app`` (module ``tests/apps/fastapi_app``) with uvicorn; yield its base URL."""
    port = free_port()
    env = {**os.environ, "RECSDK_TEST_DATABASE_URL": f"sqlite:///{database}"}
    env["PYTHONPATH"] = str(APPS)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", f"fastapi_app:{app}", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "info", "--no-access-log", "--lifespan", "on",
         "--workers", str(workers)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(url + "/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"uvicorn did not start (exit code {process.poll()})")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
        # Newer uvicorn re-raises the signal once shut down: -15 is a clean exit too.
        assert process.returncode in (0, -signal.SIGTERM), log
        assert "Application startup complete" in log
        assert "Application shutdown complete" in log
        assert "Traceback" not in log, log


@pytest.fixture
def shop(database: Path) -> Iterator[str]:
    yield from uvicorn("shop", database)


def post(base: str, batch: list[Any], **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base}/recsdk/events", json={"batch": batch}, timeout=30, **kwargs)


def test_mounted_in_fastapi_over_http(shop: str, database: Path) -> None:
    first = post(shop, [EVENT], headers=KEY)
    assert first.status_code == 200, first.text
    event_id = first.json()["results"][0]["event_id"]
    again = post(shop, [{**EVENT, "event_id": event_id}], headers=KEY)
    assert again.json()["results"] == [{"status": "duplicate", "event_id": event_id}]
    assert post(shop, [EVENT]).status_code == 401
    packed = gzip.compress(json.dumps({"batch": [{**EVENT, "item_id": "zipped"}]}).encode())
    zipped = httpx.post(
        f"{shop}/recsdk/events",
        content=packed,
        headers={**KEY, "Content-Type": "text/plain", "Content-Encoding": "gzip"},
    )
    assert zipped.json()["accepted"] == 1
    wrong_method = httpx.get(f"{shop}/recsdk/events")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST, OPTIONS")
    assert httpx.post(f"{shop}/recsdk/nope", json={}).status_code == 404
    assert httpx.get(f"{shop}/ping").json() == {"ok": True}
    with EventStore(f"sqlite:///{database}") as store:
        assert sorted(e.item_id for e in store.history("u1")) == ["sku-1", "zipped"]


def test_the_shop_keeps_answering_while_the_store_waits(shop: str, database: Path) -> None:
    """A collector request waiting on a locked database holds one of the collector's threads,
    never the event loop: the shop's other routes answer meanwhile."""
    assert post(shop, [EVENT], headers=KEY).status_code == 200  # the tables exist
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock
    answers: list[httpx.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(post(shop, [{**EVENT, "item_id": "late"}], headers=KEY))
    )
    try:
        sender.start()
        time.sleep(0.5)  # the request is in, waiting for the lock
        assert httpx.get(f"{shop}/ping", timeout=5).json() == {"ok": True}
        assert sender.is_alive()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    sender.join(timeout=30)
    assert answers[0].status_code == 200
    assert answers[0].json()["accepted"] == 1


def test_served_alone_under_its_prefix(database: Path) -> None:
    for base in uvicorn("collector", database):
        assert post(base, [EVENT], headers=KEY).json()["accepted"] == 1
        assert httpx.post(f"{base}/events", json={"batch": [EVENT]}).status_code == 404
        script = httpx.get(f"{base}/recsdk/recsdk.js")
        assert script.headers["content-type"] == "application/javascript; charset=utf-8"
        head = httpx.head(f"{base}/recsdk/recsdk.js")  # as GET, without the body
        assert (head.content, head.headers["content-length"]) == (b"", str(len(script.content)))


def test_trackers_in_threads_through_two_workers_store_every_event_once(database: Path) -> None:
    for base in uvicorn("collector", database, workers=2):
        trackers = [Tracker(f"{base}/recsdk", "wk_asgi", batch_size=50) for _ in range(4)]

        def send(tracker: Tracker, thread: int) -> None:
            for n in range(500):
                tracker.track("view", user_id=f"u{thread}", item_id=f"sku-{n % 37}")

        threads = [
            threading.Thread(target=send, args=(tracker, t)) for t, tracker in enumerate(trackers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for tracker in trackers:
            assert tracker.shutdown(timeout=60)
            assert tracker.stats()["sent"] == 500, tracker.stats()
    with EventStore(f"sqlite:///{database}") as store:
        assert store.counts().events == 2000
        assert len(store.history("u3", limit=1000)) == 500


# -- the protocol, in-process --------------------------------------------------------------


def call(
    app: Any,
    scope: dict[str, Any],
    messages: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Run one ASGI call: feed ``messages`` to ``receive``, return what the app sent."""
    sent: list[dict[str, Any]] = []
    incoming = list(messages)

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        await asyncio.sleep(3600)  # a client that sends nothing more
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(app({"type": "http", **scope}, receive, send), 30))
    return sent


def status_and_body(sent: list[dict[str, Any]]) -> tuple[int, Any]:
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], json.loads(sent[1]["body"])


@pytest.fixture
def collector(sqlite_url: str) -> Iterator[Collector]:
    with EventStore(sqlite_url) as store:
        yield Collector(store, CollectorConfig(max_body_bytes=1000, rate_limit=None))


def test_a_body_in_pieces(collector: Collector) -> None:
    body = json.dumps({"batch": [EVENT]}).encode()
    pieces = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]
    scope = {"method": "POST", "path": "/recsdk/events", "headers": [], "client": ["1.2.3.4", 5]}
    status, answer = status_and_body(call(asgi_app(collector), scope, pieces))
    assert (status, answer["accepted"]) == (200, 1)
    assert collector.store.history("u1")[0].item_id == "sku-1"


def test_a_large_body_is_refused_before_it_is_all_read(collector: Collector) -> None:
    endless: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 400, "more_body": True}
    ] * 3
    scope = {"method": "POST", "path": "/recsdk/events", "headers": []}
    status, answer = status_and_body(call(asgi_app(collector), scope, endless))
    assert status == 413
    assert answer["error"]


def test_a_client_that_leaves_gets_no_answer_and_stores_nothing(collector: Collector) -> None:
    body = json.dumps({"batch": [EVENT]}).encode()
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    scope = {"method": "POST", "path": "/recsdk/events", "headers": []}
    assert call(asgi_app(collector), scope, messages) == []
    assert collector.stats()["batches"] == 0


@pytest.mark.parametrize(
    ("path", "root_path"),
    [("/shop/recsdk/events", "/shop"), ("/recsdk/events", "/shop"), ("/recsdk/events", "")],
)
def test_paths_below_a_mount_point(collector: Collector, path: str, root_path: str) -> None:
    scope = {"method": "GET", "path": path, "root_path": root_path, "headers": []}
    status, _ = status_and_body(call(asgi_app(collector), scope, []))
    assert status == 405  # found, and asked with the wrong method


def test_websockets_are_refused_and_lifespan_is_answered(collector: Collector) -> None:
    app = asgi_app(collector)
    sent: list[dict[str, Any]] = []

    async def run(scope_type: str, messages: list[dict[str, Any]]) -> None:
        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: Any) -> None:
            sent.append(message)

        await app({"type": scope_type}, receive, send)

    asyncio.run(run("websocket", [{"type": "websocket.connect"}]))
    asyncio.run(run("lifespan", [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]))
    assert [m["type"] for m in sent] == [
        "websocket.close",
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_threads_must_be_positive(collector: Collector) -> None:
    with pytest.raises(ValueError, match="threads"):
        asgi_app(collector, threads=0)


def test_the_lists_through_httpx(tmp_path: Path) -> None:
    from recommender.shop import fill

    with Recommender(f"sqlite:///{tmp_path / 'shop.db'}") as rec:
        fill(rec)
        rec.fit()
        app = asgi_app(rec.store, prefix="/api/recsdk", recommender=rec)

        async def ask() -> tuple[httpx.Response, httpx.Response]:
            transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
                found = await http.get("/api/recsdk/recommendations?user_id=u0&k=3")
                similar = await http.get("/api/recsdk/similar/" + quote("a/b é", safe=""))
                return found, similar

        found, similar = asyncio.run(ask())
        assert found.status_code == 200, found.text
        assert [i["item_id"] for i in found.json()["items"]] == rec.recommend("u0", k=3).item_ids
        assert similar.status_code == 200


# -- anything a client sends gets an answer, never a 500 -----------------------------------

header_text = st.binary(max_size=30)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS", "DELETE", "PATCH"]),
    path=st.sampled_from(["/recsdk/events", "/recsdk/events/", "/recsdk", "/recsdk/x", "/"]),
    pieces=st.lists(st.binary(max_size=400), max_size=4),
    headers=st.lists(
        st.tuples(
            st.sampled_from([b"content-encoding", b"content-type", b"user-agent", b"origin"]),
            header_text,
        ),
        max_size=4,
    ),
    query=st.binary(max_size=30),
)
def test_never_a_500(
    collector: Collector,
    method: str,
    path: str,
    pieces: list[bytes],
    headers: list[tuple[bytes, bytes]],
    query: bytes,
) -> None:
    messages = [
        {"type": "http.request", "body": piece, "more_body": n < len(pieces) - 1}
        for n, piece in enumerate(pieces)
    ] or [{"type": "http.request", "body": b""}]
    scope = {"method": method, "path": path, "headers": headers, "query_string": query}
    sent = call(asgi_app(collector), scope, messages)
    status = sent[0]["status"]
    assert status < 500, sent
    if status != 204:
        answer = json.loads(sent[1]["body"])
        assert "error" in answer or "results" in answer
