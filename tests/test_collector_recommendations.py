"""The collector's read endpoints over real HTTP on 127.0.0.1: recommendations, similar
items and the tracker script, through the plain WSGI app and the Flask extension (the
Django app is in test_collector_frameworks.py); fuzzed in-process: never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import flask
import httpx
import pytest
from conftest import serve_wsgi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recommender.shop import fill

import recsdk
from recsdk import EventStore, Recommender
from recsdk.collector import Collector, CollectorConfig, Request, wsgi_app
from recsdk.collector.flask import RecSDK
from recsdk.collector.reads import MAX_K, ScriptFile

SHOP = "https://shop.example"
CATALOG_FIELDS = {"item_id", "score", "reason", "title", "url", "image_url", "price", "category"}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recommender]:
    url = f"sqlite:///{tmp_path_factory.mktemp('shop') / 'shop.db'}"
    with Recommender(url) as rec:
        fill(rec)
        rec.fit()
        yield rec


def wsgi_front(
    store: EventStore, rec: Recommender | None, config: CollectorConfig
) -> Callable[..., Any]:
    return wsgi_app(store, config=config, recommender=rec)


def flask_front(
    store: EventStore, rec: Recommender | None, config: CollectorConfig
) -> Callable[..., Any]:
    app = flask.Flask(__name__)
    options = {f"RECSDK_{name.upper()}": value for name, value in attrs.asdict(config).items()}
    app.config.update(RECSDK_DATABASE_URL="sqlite://", **options)
    RecSDK(app, store=store, recommender=rec)
    return app


FRONTS = {"wsgi": wsgi_front, "flask": flask_front}


@pytest.fixture(params=sorted(FRONTS))
def front(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return FRONTS[str(request.param)]


@pytest.fixture
def client(front: Callable[..., Any], fitted: Recommender) -> Iterator[httpx.Client]:
    config = CollectorConfig(allowed_origins=[SHOP], rate_limit=None)
    with (
        serve_wsgi(front(fitted.store, fitted, config)) as base,
        httpx.Client(base_url=f"{base}/recsdk", timeout=10) as http,
    ):
        yield http


def test_recommendations_for_a_shopper(client: httpx.Client, fitted: Recommender) -> None:
    answer = client.get("/recommendations", params={"user_id": "u0", "k": 4})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert len(body["rec_id"]) == 36
    assert len(body["items"]) == 4
    assert all(set(item) >= CATALOG_FIELDS for item in body["items"])
    assert [i["item_id"] for i in body["items"]] == fitted.recommend("u0", k=4).item_ids
    again = client.get("/recommendations", params={"user_id": "u0", "k": 4}).json()
    assert again["rec_id"] != body["rec_id"]  # one id per showing


def test_recommendations_options(client: httpx.Client) -> None:
    visitor = client.get("/recommendations", params={"anonymous_id": "new-visitor"}).json()
    assert len(visitor["items"]) == 10  # the default k
    assert {i["reason"] for i in visitor["items"]} == {"trending"}
    books = client.get("/recommendations", params={"k": 3, "category": "books"}).json()
    assert {i["category"] for i in books["items"]} == {"books"}
    first = [i["item_id"] for i in books["items"]]
    rest = client.get(
        "/recommendations", params={"k": 3, "category": "books", "exclude": ",".join(first)}
    ).json()
    assert not set(first) & {i["item_id"] for i in rest["items"]}
    capped = client.get("/recommendations", params={"k": 10_000}).json()
    assert len(capped["items"]) == min(MAX_K, 31)  # 32 items in the shop, one sold out


def test_similar_items(client: httpx.Client) -> None:
    answer = client.get("/similar/k0", params={"k": 3})
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert len(items) == 3
    assert "k0" not in {i["item_id"] for i in items}
    assert items[0]["reason"] == "similar to Red mug"
    odd = client.get("/similar/" + quote("a/b é?#", safe=""), params={"k": 2})
    assert odd.status_code == 200  # an item the store never saw: trending ones
    assert len(odd.json()["items"]) == 2


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/recommendations", {"k": "abc"}, "k"),
        ("/recommendations", {"k": "0"}, "k"),
        ("/recommendations", {"k": "-3"}, "k"),
        ("/recommendations", {"user_id": "x" * 300}, "user_id"),
        ("/recommendations", {"anonymous_id": "a\x01b"}, "anonymous_id"),
        ("/recommendations", {"category": "c" * 300}, "category"),
        ("/recommendations", {"exclude": "ok,bad\x7f"}, "exclude"),
        ("/similar/" + "x" * 300, {}, "item"),
        ("/similar/", {}, "item"),
        ("/similar/k0", {"k": "1.5"}, "k"),
    ],
)
def test_bad_parameters_get_a_400_naming_them(
    client: httpx.Client, path: str, params: dict[str, str], parameter: str
) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["parameter"] == parameter
    assert parameter in answer.json()["error"]


def test_cors_like_the_events_endpoint(client: httpx.Client) -> None:
    allowed = client.get("/recommendations", headers={"Origin": SHOP})
    assert allowed.headers["access-control-allow-origin"] == SHOP
    other = client.get("/similar/k0", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options("/recommendations", headers={"Origin": SHOP})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, OPTIONS"
    wrong = client.post("/recommendations", json={})
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD, OPTIONS"


def test_events_posted_here_update_the_lists_at_once(client: httpx.Client) -> None:
    top = client.get("/recommendations", params={"user_id": "u1", "k": 1}).json()["items"][0]
    purchase = {"type": "purchase", "user_id": "u1", "item_id": top["item_id"], "order_id": "w"}
    assert client.post("/events", json={"batch": [purchase]}).json()["accepted"] == 1
    after = client.get("/recommendations", params={"user_id": "u1", "k": 5}).json()
    assert top["item_id"] not in {i["item_id"] for i in after["items"]}


def test_without_a_recommender_the_lists_are_404(
    front: Callable[..., Any], fitted: Recommender
) -> None:
    with (
        serve_wsgi(front(fitted.store, None, CollectorConfig())) as base,
        httpx.Client(base_url=f"{base}/recsdk") as http,
    ):
        for path in ("/recommendations", "/similar/k0"):
            answer = http.get(path)
            assert answer.status_code == 404
            assert "Recommender" in answer.json()["error"]


def test_an_unfitted_recommender_answers_503(tmp_path: Path) -> None:
    with Recommender(f"sqlite:///{tmp_path / 'empty.db'}") as rec:
        collector = Collector(rec.store, recommender=rec)
        answer = collector.handle(Request("GET", "/recommendations", query="k=3"))
    assert answer.status == 503
    assert dict(answer.headers)["Retry-After"] == "60"


def test_the_tracker_script(client: httpx.Client) -> None:
    answer = client.get("/recsdk.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/javascript; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    assert len(answer.content) > 100
    assert answer.content == (Path(recsdk.__file__).parent / "static/recsdk.min.js").read_bytes()
    again = client.get("/recsdk.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = client.head("/recsdk.js")  # as GET, without the body
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["etag"] == answer.headers["etag"]
    assert head.headers["content-length"] == str(len(answer.content))


def test_no_script_in_the_package_is_a_404(fitted: Recommender) -> None:
    collector = Collector(fitted.store)
    collector._script = ScriptFile("static/missing.js")
    answer = collector.handle(Request("GET", "/recsdk.js"))
    assert answer.status == 404
    assert json.loads(answer.body)["error"]


def test_personal_lists_can_require_a_key(fitted: Recommender) -> None:
    config = CollectorConfig(
        write_keys=["wk"], public_keys=["pk"], allowed_origins=[SHOP],
        recommendations_need_key=True,
    )  # fmt: skip
    collector = Collector(fitted.store, config, fitted)

    def ask(query: str, **headers: str) -> int:
        return collector.handle(Request("GET", "/recommendations", headers, query=query)).status

    def error(query: str) -> str:
        answer = collector.handle(Request("GET", "/recommendations", {}, query=query))
        return str(json.loads(answer.body)["error"])

    assert ask("user_id=u0") == 401
    assert error("user_id=u0") == (
        "a valid key is required (Authorization header or query parameter 'key')"
    )
    assert error("user_id=u0&key=wk") == (
        "send a write key in the Authorization header, never in the query parameter 'key'"
    )
    assert ask("user_id=u0&key=pk", origin="https://evil.example") == 403
    assert ask("user_id=u0&key=pk", origin=SHOP) == 200
    assert collector.handle(Request("GET", "/similar/k0")).status == 200  # not personal


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/recommendations", "/similar/", "/similar/k0", "/recsdk.js"])
    | st.text(max_size=30).map(lambda t: "/similar/" + t),
    query=st.text(max_size=80)
    | st.dictionaries(
        st.sampled_from(["k", "user_id", "anonymous_id", "category", "exclude", "key", "x"]),
        st.text(max_size=20),
    ).map(lambda d: "&".join(f"{k}={quote(v)}" for k, v in d.items())),
    method=st.sampled_from(["GET", "POST", "OPTIONS", "PUT", "HEAD"]),
)
def test_no_query_makes_a_500(fitted: Recommender, path: str, query: str, method: str) -> None:
    collector = Collector(fitted.store, CollectorConfig(rate_limit=None), fitted)
    answer = collector.handle(Request(method, path, {}, b"", "127.0.0.1", query))
    assert answer.status < 500, answer.body
