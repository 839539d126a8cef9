"""The collector over real HTTP on 127.0.0.1 (a wsgiref server), and fuzzed in-process."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import serve_wsgi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsdk import EventStore
from recsdk.collector import Collector, CollectorConfig, Request, wsgi_app


@pytest.fixture
def collector(store: EventStore) -> Collector:
    return Collector(store)


@pytest.fixture
def client(collector: Collector) -> Iterator[httpx.Client]:
    """An HTTP client talking to the collector served on a free port of 127.0.0.1."""
    with (
        serve_wsgi(wsgi_app(collector)) as base,
        httpx.Client(base_url=f"{base}/recsdk", timeout=10) as http,
    ):
        yield http


def view(item: str = "sku-1", **fields: Any) -> dict[str, Any]:
    return {"type": "view", "user_id": "u1", "item_id": item, **fields}


def post(client: httpx.Client, batch: list[Any], **kwargs: Any) -> httpx.Response:
    return client.post("/events", json={"batch": batch}, **kwargs)


def test_a_batch_is_stored_and_answered_per_event(client: httpx.Client, store: EventStore) -> None:
    answer = post(client, [view("a"), view("b"), {"type": "view", "user_id": "u1"}])
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 0, 1)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted", "accepted", "rejected"]
    assert body["results"][2] == {
        "status": "rejected",
        "field": "item_id",
        "reason": "a 'view' event needs an item_id",
    }
    assert sorted(h.item_id for h in store.history("u1")) == ["a", "b"]


def test_a_retried_batch_is_stored_once(client: httpx.Client, store: EventStore) -> None:
    batch = [view("a", event_id="01936c3e-0000-7000-8000-000000000001"), view("b")]
    first = post(client, batch).json()
    batch[1]["event_id"] = first["results"][1]["event_id"]
    again = post(client, [*batch, batch[0]]).json()
    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert store.counts().events == 2


def test_text_plain_and_gzip_bodies(client: httpx.Client, store: EventStore) -> None:
    text = json.dumps({"batch": [view("plain")]})
    answer = client.post("/events", content=text, headers={"Content-Type": "text/plain"})
    assert answer.json()["accepted"] == 1
    packed = gzip.compress(json.dumps({"batch": [view("zipped")]}).encode())
    answer = client.post(
        "/events",
        content=packed,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.json()["accepted"] == 1
    assert store.counts().events == 2


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"{not json", {}, 400),
        (b'{"events": []}', {}, 400),
        (b"[1, 2]", {}, 400),
        (b"\xff\xfe", {}, 400),
        (b"x" * (500 * 1024 + 1), {}, 413),
        (b"not gzip", {"Content-Encoding": "gzip"}, 400),
        (gzip.compress(b" " * (6 * 1024 * 1024)), {"Content-Encoding": "gzip"}, 413),
        (b'{"batch": []}', {"Content-Encoding": "br"}, 415),
    ],
)
def test_bad_bodies_get_clear_answers(
    client: httpx.Client, content: bytes, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/events", content=content, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"]


def test_limits(client: httpx.Client, store: EventStore) -> None:
    too_many = post(client, [view(f"sku-{i}") for i in range(501)])
    assert too_many.status_code == 413
    assert "500" in too_many.json()["error"]
    big = view("big", properties={"blob": "x" * 33_000})
    answer = post(client, [big, view("small")]).json()
    assert answer["results"][0]["status"] == "rejected"
    assert answer["results"][0]["field"] == "event"
    assert answer["results"][1]["status"] == "accepted"
    assert [h.item_id for h in store.history("u1")] == ["small"]


def test_methods_and_paths(client: httpx.Client) -> None:
    wrong_method = client.get("/events")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST, OPTIONS"
    assert client.post("/nope", json={}).status_code == 404
    assert httpx.post(str(client.base_url).replace("/recsdk", "/other"), json={}).status_code == 404


def test_server_side_enrichment(client: httpx.Client, store: EventStore) -> None:
    now = datetime.now(timezone.utc)
    sent_at = now - timedelta(hours=1)  # the client's clock is an hour behind
    batch = [
        view(
            "with-ip",
            timestamp=(sent_at - timedelta(minutes=5)).isoformat(),
            context={"ip": "203.0.113.77"},
        ),
        view("v6", context={"ip": "2001:db8:1234:5678::1"}),
        view("no-ip"),
    ]
    answer = client.post(
        "/events",
        json={"batch": batch, "sent_at": sent_at.isoformat()},
        headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/140.0"},
    )
    assert answer.json()["accepted"] == 3
    events = {e.item_id: e for item in ("with-ip", "v6", "no-ip") for e in store.item_events(item)}
    assert events["with-ip"].context["ip"] == "203.0.113.0"
    assert events["v6"].context["ip"] == "2001:db8:1234::"
    assert events["no-ip"].context["ip"] == "127.0.0.0"  # the peer's address, truncated
    assert events["no-ip"].context["user_agent"].startswith("Mozilla/5.0")
    corrected = events["with-ip"].timestamp
    assert abs(corrected - (now - timedelta(minutes=5))) < timedelta(seconds=5)


def test_bots_are_counted_not_stored(
    client: httpx.Client, store: EventStore, collector: Collector
) -> None:
    crawler = post(client, [view("a")], headers={"User-Agent": "Googlebot/2.1"}).json()
    automated = post(client, [view("b", context={"webdriver": True})]).json()
    assert crawler["results"] == [{"status": "ignored", "reason": "bot"}]
    assert automated["bots"] == 1
    assert store.counts().events == 0
    assert collector.stats()["bots"] == 2


def test_sql_injection_over_http_is_stored_as_data(client: httpx.Client, store: EventStore) -> None:
    evil = "1'; DROP TABLE recsdk_events; --"
    assert post(client, [view(evil, user_id=evil)]).json()["accepted"] == 1
    assert store.history(evil)[0].item_id == evil


def test_a_failing_store_answers_503(client: httpx.Client, store: EventStore) -> None:
    def fail(*args: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    sa.event.listen(store.engine, "before_cursor_execute", fail)
    try:
        answer = post(client, [view()])
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", fail)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert post(client, [view()]).status_code == 200


# -- anything a client sends gets an answer, never a 500 ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
event_like = st.dictionaries(
    st.sampled_from(
        ["type", "user_id", "item_id", "timestamp", "event_id", "context", "price", "x"]
    ),
    json_values | st.sampled_from(["view", "purchase", "2026-01-01T00:00:00Z"]),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(
        lambda batch, sent_at: json.dumps({"batch": batch, "sent_at": sent_at}).encode(),
        st.lists(event_like | json_values, max_size=5),
        json_values,
    ),
    st.builds(lambda value: json.dumps(value).encode(), json_values),
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS", "DELETE", "PATCH"]),
    path=st.sampled_from(["/recsdk/events", "/recsdk/events/", "/recsdk", "/recsdk/x", "/"]),
    body=bodies,
    headers=st.dictionaries(
        st.sampled_from(["HTTP_CONTENT_ENCODING", "CONTENT_TYPE", "HTTP_USER_AGENT", "HTTP_X"]),
        header_values,
    ),
    length=st.one_of(st.none(), st.integers(-5, 10**7).map(str), header_values),
)
def test_never_a_500(
    collector: Collector,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    length: str | None,
) -> None:
    app = wsgi_app(collector)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "wsgi.input": io.BytesIO(body),
        "REMOTE_ADDR": "127.0.0.1",
        **headers,
    }
    if length is not None:
        environ["CONTENT_LENGTH"] = length
    seen: list[str] = []
    payload = b"".join(app(environ, lambda status, _headers: seen.append(status)))
    assert not seen[0].startswith("5"), (seen, payload)
    if not seen[0].startswith("204"):
        assert "error" in json.loads(payload) or "results" in json.loads(payload)


def test_the_core_without_http(collector: Collector) -> None:
    body = json.dumps({"batch": [view()]}).encode()
    response = collector.handle(Request("POST", "/events", {}, body, "10.1.2.3"))
    assert response.status == 200
    assert json.loads(response.body)["accepted"] == 1
    assert collector.config == CollectorConfig()
