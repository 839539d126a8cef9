"""The Flask extension and the Django app, each serving the collector end to end (the list
endpoints of the WSGI app and Flask are in test_collector_recommendations.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import collector_recommender
import flask
import httpx
import pytest
from conftest import serve_wsgi

from recsdk import EventStore
from recsdk.collector import Collector
from recsdk.collector.flask import RecSDK
from recsdk.collector.settings import read_settings

EVENT = {"type": "view", "user_id": "u1", "item_id": "sku-1"}


# -- Flask -------------------------------------------------------------------------------


def flask_app(database_url: str, **config: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(RECSDK_DATABASE_URL=database_url, **config)
    return app


def test_flask_extension(sqlite_url: str) -> None:
    app = flask_app(sqlite_url, RECSDK_WRITE_KEYS=["wk"], RECSDK_PREFIX="/track")
    RecSDK(app)
    client = app.test_client()
    answer = client.post(
        "/track/events", json={"batch": [EVENT]}, headers={"Authorization": "Bearer wk"}
    )
    assert answer.status_code == 200
    assert answer.get_json()["accepted"] == 1
    assert client.post("/track/events", json={"batch": [EVENT]}).status_code == 401
    assert client.get("/track/events").status_code == 405
    assert client.post("/track/other", json={}).status_code == 404
    assert RecSDK.collector(app).stats()["accepted"] == 1
    with EventStore(sqlite_url) as store:
        assert store.counts().events == 1
    with app.test_request_context():  # pages link the collector's URLs by name
        assert flask.url_for("recsdk.collector", path="recsdk.js") == "/track/recsdk.js"


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("RECSDK_MAX_EVENTS", "100"),  # read from the environment, not converted
        ("RECSDK_MAX_BODY_BYTES", "1000"),
        ("RECSDK_RATE_LIMIT", "20"),
        ("RECSDK_DROP_BOTS", "false"),
        ("RECSDK_ALLOWED_ORIGINS", ["shop.example"]),
    ],
)
def test_a_mistyped_setting_fails_at_startup_naming_it(
    sqlite_url: str, setting: str, value: object
) -> None:
    from recsdk.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        RecSDK(flask_app(sqlite_url, **{setting: value}))
    assert caught.value.field == setting


def test_origins_are_normalized_as_browsers_send_them() -> None:
    from recsdk.collector import CollectorConfig

    written = ["https://Shop.example:443/", "http://localhost:8000", "http://[::1]:8080/"]
    assert CollectorConfig(allowed_origins=written).allowed_origins == (
        "https://shop.example",
        "http://localhost:8000",
        "http://[::1]:8080",
    )


def test_origins_are_compared_as_browsers_send_them(sqlite_url: str) -> None:
    app = flask_app(
        sqlite_url, RECSDK_PUBLIC_KEYS=["pk"], RECSDK_ALLOWED_ORIGINS=["https://Shop.example:443/"]
    )
    RecSDK(app)
    page = {"batch": [EVENT], "key": "pk"}
    answer = app.test_client().post(
        "/recsdk/events", json=page, headers={"Origin": "https://shop.example"}
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"


def test_flask_application_factory_and_text_plain(sqlite_url: str) -> None:
    extension = RecSDK()
    app = flask_app(sqlite_url, RECSDK_ALLOWED_ORIGINS=["https://shop.example"])
    extension.init_app(app)
    client = app.test_client()
    answer = client.post(
        "/recsdk/events",
        data=json.dumps({"batch": [EVENT]}),
        headers={"Content-Type": "text/plain", "Origin": "https://shop.example"},
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    preflight = client.options("/recsdk/events", headers={"Origin": "https://shop.example"})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_flask_recsdk_command_works_on_the_apps_store(sqlite_url: str) -> None:
    app = flask_app(sqlite_url)
    RecSDK(app)
    with EventStore(sqlite_url) as store:
        store.add_many([EVENT, {**EVENT, "item_id": "sku-2"}])
    runner = app.test_cli_runner()
    exported = runner.invoke(args=["recsdk", "export-user", "--user-id", "u1"])
    assert exported.exit_code == 0, exported.output
    assert len(json.loads(exported.output)["events"]) == 2
    erased = runner.invoke(args=["recsdk", "erase-user", "--user-id", "u1"])
    assert (erased.exit_code, erased.output) == (0, "erased 2 events\n")
    wrong = runner.invoke(args=["recsdk", "erase-before", "--days", "-1"])
    assert wrong.exit_code == 2
    assert "--days: must be a number of days >= 0" in wrong.output
    helped = runner.invoke(args=["recsdk", "--help"])
    assert "usage: flask recsdk" in helped.output


# -- Django ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Configure Django once for this process, with the collector on a fresh SQLite file."""
    from django.conf import settings

    url = f"sqlite:///{tmp_path_factory.mktemp('django') / 'recsdk.db'}"
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="django_urls",
            INSTALLED_APPS=["recsdk.collector.django"],
            MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
            DATABASES={},
            RECSDK_DATABASE_URL=url,
            RECSDK_WRITE_KEYS=["wk"],
        )
        import django

        django.setup()
    return url


def test_django_app_under_wsgi(django_database: str) -> None:
    from django.test import Client

    client = Client()
    answer = client.post(
        "/shop/recsdk/events",
        data=json.dumps({"batch": [EVENT]}),
        content_type="text/plain",
        HTTP_AUTHORIZATION="Bearer wk",
    )
    assert answer.status_code == 200, answer.content
    assert json.loads(answer.content)["accepted"] == 1
    unsigned = client.post(
        "/shop/recsdk/events", data=json.dumps({"batch": [EVENT]}), content_type="text/plain"
    )
    assert unsigned.status_code == 401
    assert client.get("/shop/recsdk/events").status_code == 405


def test_django_app_under_asgi(django_database: str) -> None:
    from django.test import AsyncClient

    async def post() -> Any:
        return await AsyncClient().post(
            "/shop/recsdk/events",
            data=json.dumps({"batch": [{**EVENT, "item_id": "sku-asgi"}]}),
            content_type="application/json",
            headers={"Authorization": "Bearer wk"},
        )

    answer = asyncio.run(post())
    assert answer.status_code == 200, answer.content
    with EventStore(django_database) as store:
        assert [e.item_id for e in store.item_events("sku-asgi")] == ["sku-asgi"]


def test_django_recsdk_command_works_on_the_settings_store(
    django_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from django.core.management import CommandError, call_command

    with EventStore(django_database) as store:
        store.add({**EVENT, "user_id": "django-shopper"})
    call_command("recsdk", "export-user", "--user-id", "django-shopper")
    assert json.loads(capsys.readouterr().out)["user_id"] == "django-shopper"
    call_command("recsdk", "erase-user", "--user-id", "django-shopper")
    assert capsys.readouterr().out == "erased 1 event\n"
    with pytest.raises(CommandError, match="recsdk failed"):
        call_command("recsdk", "erase-before", "--before", "someday")
    assert "moment: 'someday' is not an ISO 8601" in capsys.readouterr().err


def test_frameworks_load_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, recsdk.collector; print('flask' in sys.modules, 'django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_django_serves_the_lists_over_http(
    django_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from recommender.shop import fill

    from recsdk import Recommender
    from recsdk.collector.django import views

    with Recommender(f"sqlite:///{tmp_path / 'shop.db'}") as rec:
        fill(rec)
        rec.fit()
        settings_ = read_settings(lambda name, default: default)
        collector = Collector(rec.store, settings_.config, rec)
        monkeypatch.setattr(views, "_collector", collector)
        with (
            serve_wsgi(WSGIHandler()) as base,
            httpx.Client(base_url=f"{base}/shop/recsdk", timeout=10) as http,
        ):
            found = http.get("/recommendations", params={"user_id": "u0", "k": 3})
            assert found.status_code == 200, found.text
            assert [i["item_id"] for i in found.json()["items"]] == rec.recommend(
                "u0", k=3
            ).item_ids
            similar = http.get("/similar/" + quote("k0", safe=""), params={"k": 2})
            assert len(similar.json()["items"]) == 2
            odd = http.get("/similar/" + quote("a/b é", safe=""))
            assert odd.status_code == 200
            bad = http.get("/recommendations", params={"k": "many"})
            assert (bad.status_code, bad.json()["parameter"]) == (400, "k")
            script = http.get("/recsdk.js")
            assert script.headers["content-type"] == "application/javascript; charset=utf-8"
            head = http.head("/recsdk.js")  # as GET, without the body
            assert head.content == b""
            assert head.headers["content-length"] == str(len(script.content))


def test_the_recommender_setting(tmp_path: Path) -> None:
    from recsdk import EventStore, Recommender
    from recsdk.collector.settings import make_recommender

    with EventStore(f"sqlite:///{tmp_path / 'x.db'}") as store:
        assert make_recommender(None, store) is None
        made = make_recommender(True, store)
        assert isinstance(made, Recommender)
        made.close()
        assert make_recommender(made, store) is made
        named = make_recommender("collector_recommender:RECOMMENDER", store)
        assert named is collector_recommender.RECOMMENDER
        assert make_recommender("collector_recommender.factory", store) is named
        with pytest.raises(TypeError, match="RECSDK_RECOMMENDER"):
            make_recommender("collector_recommender:NOT_ONE", store)
    # True with a database that has no file to save beside would answer 503 for ever.
    from recsdk.errors import ValidationError

    with EventStore("sqlite://") as memory, pytest.raises(ValidationError) as caught:
        make_recommender(True, memory)
    assert caught.value.field == "RECSDK_RECOMMENDER"
