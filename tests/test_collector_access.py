"""Who may send events: write keys, public keys and origins, CORS, rate limits."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from recsdk import EventStore
from recsdk.collector import Collector, CollectorConfig, Request, Response
from recsdk.collector.access import RateLimiter, matches_any

SHOP = "https://shop.example"
BATCH = {"batch": [{"type": "view", "user_id": "u1", "item_id": "sku-1"}]}


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[EventStore]:
    with EventStore(sqlite_url) as store:
        yield store


@pytest.fixture
def secured(sqlite_store: EventStore) -> Collector:
    config = CollectorConfig(
        write_keys=["wk_secret"], public_keys=["pk_page"], allowed_origins=[SHOP]
    )
    return Collector(sqlite_store, config)


def send(
    collector: Collector,
    payload: Any = BATCH,
    *,
    method: str = "POST",
    ip: str = "198.51.100.7",
    **headers: str,
) -> Response:
    body = json.dumps(payload).encode()
    lowered = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    return collector.handle(Request(method, "/events", lowered, body, ip))


def test_a_write_key_in_the_authorization_header(secured: Collector) -> None:
    assert send(secured, authorization="Bearer wk_secret").status == 200
    assert send(secured, authorization="Bearer wrong").status == 401
    assert send(secured).status == 401  # no key at all
    no_scheme = send(secured, authorization="wk_secret")
    assert no_scheme.status == 401
    assert json.loads(no_scheme.body)["error"] == (
        "send a write key as 'Authorization: Bearer <key>'"
    )
    # A page behind a staging site's Basic auth sends it along: its public key still works.
    basic = send(secured, {**BATCH, "key": "pk_page"}, origin=SHOP, authorization="Basic dTpw")
    assert basic.status == 200


def test_a_write_key_client_is_no_bot_by_its_http_library(secured: Collector) -> None:
    # A shop's backend posting with curl or requests: its user agent is not a shopper's.
    for agent in ("curl/8.5.0", "python-requests/2.32.3"):
        answer = send(secured, authorization="Bearer wk_secret", user_agent=agent)
        assert json.loads(answer.body)["accepted"] == 1
    # The shopper's user agent it forwards in the event's context still counts.
    crawler = {"batch": [{**BATCH["batch"][0], "context": {"user_agent": "Googlebot/2.1"}}]}
    forwarded = send(secured, crawler, authorization="Bearer wk_secret")
    assert json.loads(forwarded.body)["bots"] == 1
    # Without a write key, the request's own user agent is the shopper's.
    page = {**BATCH, "key": "pk_page"}
    assert json.loads(send(secured, page, origin=SHOP, user_agent="curl/8.5.0").body)["bots"] == 1


def test_a_public_key_only_from_allowed_origins(secured: Collector) -> None:
    page = {**BATCH, "key": "pk_page"}
    assert send(secured, page, origin=SHOP).status == 200
    refused = send(secured, page, origin="https://evil.example")
    assert refused.status == 403
    assert send(secured, page).status == 403  # no origin: not a page of the shop
    leaked = send(secured, {**BATCH, "key": "wk_secret"}, origin=SHOP)
    assert leaked.status == 401
    assert "Authorization header" in json.loads(leaked.body)["error"]


def test_cors_headers_only_for_allowed_origins(secured: Collector) -> None:
    allowed = dict(send(secured, {**BATCH, "key": "pk_page"}, origin=SHOP).headers)
    assert allowed["Access-Control-Allow-Origin"] == SHOP
    # A refusal is readable by the page it refuses, so that its tracker drops the batch
    # instead of taking a hidden status for a network failure and sending it for ever.
    for payload in ({**BATCH, "key": "pk_page"}, BATCH):
        refused = send(secured, payload, origin="https://evil.example")
        assert refused.status in (401, 403)
        assert dict(refused.headers)["Access-Control-Allow-Origin"] == "https://evil.example"
    preflight = send(secured, method="OPTIONS", origin=SHOP)
    assert preflight.status == 204
    headers = dict(preflight.headers)
    assert headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in headers["Access-Control-Allow-Methods"]
    denied = dict(send(secured, method="OPTIONS", origin="https://evil.example").headers)
    assert "Access-Control-Allow-Methods" not in denied


def test_rate_limit_per_ip(sqlite_store: EventStore) -> None:
    config = CollectorConfig(rate_limit=1.0, rate_limit_burst=3, write_keys=["wk"])
    collector = Collector(sqlite_store, config)
    statuses = [send(collector, authorization="Bearer nope").status for _ in range(3)]
    assert statuses == [401, 401, 401]  # bad keys are refused before the limit counts
    answers = [send(collector, {**BATCH, "key": "x"}) for _ in range(5)]
    assert [a.status for a in answers] == [401, 401, 401, 429, 429]
    assert dict(answers[-1].headers)["Retry-After"] == "1"
    assert send(collector, ip="203.0.113.9").status == 401  # another client has its own bucket
    trusted = [send(collector, authorization="Bearer wk").status for _ in range(10)]
    assert trusted == [200] * 10  # server clients with a write key are not limited


def test_forwarded_for_is_trusted_only_when_asked(sqlite_store: EventStore) -> None:
    store = sqlite_store
    config = CollectorConfig(rate_limit=None, trust_forwarded_for=True)
    send(Collector(store, config), x_forwarded_for="203.0.113.50, 10.0.0.1")
    send(Collector(store, CollectorConfig(rate_limit=None)), x_forwarded_for="203.0.113.50")
    ips = [e.context["ip"] for e in store.item_events("sku-1")]
    assert sorted(ips) == ["198.51.100.0", "203.0.113.0"]


def test_an_open_collector_accepts_anyone(sqlite_store: EventStore) -> None:
    collector = Collector(sqlite_store)
    assert collector.config.open
    assert send(collector).status == 200
    # Any page may read the answer to its events (else a tracker would resend them forever).
    answer = dict(send(collector, origin="https://elsewhere.example").headers)
    assert answer["Access-Control-Allow-Origin"] == "https://elsewhere.example"
    assert answer["Access-Control-Expose-Headers"] == "Retry-After"
    preflight = dict(send(collector, method="OPTIONS", origin="https://elsewhere.example").headers)
    assert "POST" in preflight["Access-Control-Allow-Methods"]
    # A shopper's recommendations are not for any page (test_collector_recommendations.py);
    # a refusal is, as here, where no recommender is given.
    lists = collector.handle(
        Request("GET", "/recommendations", {"origin": "https://elsewhere.example"}, b"", "1.2.3.4")
    )
    assert lists.status == 404
    assert dict(lists.headers)["Access-Control-Allow-Origin"] == "https://elsewhere.example"


def test_key_comparison() -> None:
    assert matches_any("k1", ["k0", "k1"])
    assert not matches_any("k", ["k0", "k1"])
    assert not matches_any(None, ["k"])
    assert not matches_any("k", [])


def test_token_bucket_refills() -> None:
    limiter = RateLimiter(rate=1000.0, burst=2)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0.0
    time.sleep(0.01)
    assert limiter.acquire("a") == 0.0
