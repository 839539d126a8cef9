"""The Flask extension and the Django app, each serving the collector end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import flask
import pytest

from recsdk import EventStore
from recsdk.collector.flask import RecSDK

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


def test_frameworks_load_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, recsdk.collector; print('flask' in sys.modules, 'django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
