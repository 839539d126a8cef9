"""The Flask and Django example shops, each through its framework's test client, tell the
story of test_examples.py's FastAPI shop; and the commands of their docstrings start them."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).parent.parent
DJANGO_PROJECT = ROOT / "examples" / "django_shop"
NEEDS = "the example needs {0}: pip install -e '.[dev]' (or recsdk[{0}])"

PURCHASES = {"u1": ["sku-1", "sku-2"], "u2": ["sku-1", "sku-2", "sku-3"]}
PAGE_EVENT = {"type": "view", "anonymous_id": "a1", "item_id": "sku-3"}


class Answer(NamedTuple):
    status: int
    content_type: str
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


class Send(Protocol):
    """One request to the shop: a form or a JSON payload as its body, if any."""

    def __call__(
        self, method: str, path: str, *, form: dict[str, str] | None = None, payload: Any = None
    ) -> Answer: ...


def encoded(form: dict[str, str] | None, payload: Any) -> tuple[str, str]:
    """The body and content type of a request."""
    if form is not None:
        return urlencode(form), "application/x-www-form-urlencoded"
    if payload is not None:
        return json.dumps(payload), "application/json"
    return "", "application/octet-stream"


def forget_modules(name: str) -> None:
    """Drop ``name`` and its submodules from sys.modules: the examples read the environment
    when imported, so each test imports them afresh."""
    for loaded in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[loaded]


def walk_through_the_shop(send: Send) -> None:
    before = send("GET", "/products/sku-1")  # renders before any fit
    assert before.status == 200
    assert 'src="/recsdk/recsdk.js"' in before.text
    for user, items in PURCHASES.items():
        for n, item in enumerate(items):
            form = {"user_id": user, "item_id": item, "order_id": f"{user}-{n}"}
            assert send("POST", "/checkout", form=form).status == 200
    event = send("POST", "/recsdk/events", payload={"batch": [PAGE_EVENT]})
    assert event.json()["accepted"] == 1
    assert send("POST", "/admin/fit").json() == {"fitted": True}
    page = send("GET", "/products/sku-1")
    assert 'href="/products/sku-2"' in page.text  # bought together with sku-1
    recommended = send("GET", "/users/u1/recommendations").json()
    assert recommended[0]["item_id"] == "sku-3"  # bought by u2, who shares u1's taste
    script = send("GET", "/recsdk/recsdk.js")
    assert script.content_type == "application/javascript; charset=utf-8"
    exported = send("GET", "/users/u1/data").json()
    assert [e["item_id"] for e in exported["events"]] == ["sku-1", "sku-2"]
    assert send("DELETE", "/users/u1/data").json() == {"erased_events": 2}
    assert send("GET", "/users/u1/data").json()["events"] == []


def make_mistakes(send: Send, quoted_item_js: str) -> None:
    """The client's mistakes are answered 4xx (422 with the field), never 500."""
    empty_user = {"user_id": "", "item_id": "sku-1", "order_id": "o-9"}
    refused = [
        (send("POST", "/checkout", form=empty_user), "user_id"),
        (send("GET", "/users/%01/recommendations"), "user_id"),  # a control character
        (send("GET", "/products/" + "x" * 300), "item_id"),  # too long
    ]
    for answer, field in refused:
        assert (answer.status, answer.json()["field"]) == (422, field)
    assert send("GET", "/checkout").status == 405
    assert send("POST", "/users/u1/data").status == 405
    quoted = send("GET", '/products/a"<b')
    assert quoted.status == 200
    assert quoted_item_js in quoted.text  # a JavaScript string: it cannot end the script


# -- Flask -------------------------------------------------------------------------------


def test_the_flask_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("flask", reason=NEEDS.format("flask"))
    monkeypatch.setenv("RECSDK_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.syspath_prepend(str(ROOT))
    forget_modules("examples.flask_shop")
    shop: Any = importlib.import_module("examples.flask_shop")
    client = shop.app.test_client()

    def send(
        method: str, path: str, *, form: dict[str, str] | None = None, payload: Any = None
    ) -> Answer:
        body, content_type = encoded(form, payload)
        answer = client.open(path, method=method, data=body, content_type=content_type)
        return Answer(answer.status_code, answer.content_type, answer.get_data(as_text=True))

    try:
        walk_through_the_shop(send)
        make_mistakes(send, quoted_item_js='item_id:"a\\"\\u003cb"')
        assert send("POST", "/checkout", form={"user_id": "u1"}).status == 400  # no item_id
    finally:
        shop.rec.close()
        forget_modules("examples.flask_shop")


# -- Django ------------------------------------------------------------------------------


def configure_django(shop_settings: dict[str, Any]) -> bool:
    """Configure Django for this process unless another test did; say whether this did.

    As in test_collector_frameworks.py: settings are process-global, configured once; the
    test lays the shop's over whatever is configured with override_settings.
    """
    import django
    from django.conf import settings

    if settings.configured:
        return False
    settings.configure(**shop_settings)
    django.setup()
    return True


def unconfigure_django() -> None:
    """Hand Django back unconfigured, so that a test run after this one configures it its
    own way (test_collector_frameworks.py does, if nothing did). Django has no public way
    to do this: empty the settings object as it was before ``configure()``."""
    from django.conf import settings
    from django.utils.functional import empty

    settings._wrapped = empty


def forget_other_recsdk_settings(keep: dict[str, Any]) -> None:
    """Inside override_settings, unset the RECSDK_* settings that another test configured
    and the shop does not set (a write key, say), so that the shop runs on its own; they
    come back when the override ends."""
    from django.conf import settings

    for name in dir(settings):
        if name.startswith("RECSDK_") and name not in keep:
            delattr(settings, name)


@pytest.fixture
def django_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The example project's settings over this process's, on a fresh SQLite file; yields
    its views module."""
    pytest.importorskip("django", reason=NEEDS.format("django"))
    from django.test import override_settings

    from recsdk.collector.django import views as collector_views

    monkeypatch.setenv("RECSDK_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.syspath_prepend(str(DJANGO_PROJECT))
    forget_modules("shop")
    shop_settings = importlib.import_module("shop.settings")
    overrides = {name: getattr(shop_settings, name) for name in dir(shop_settings)}
    overrides = {name: value for name, value in overrides.items() if name.isupper()}
    overrides["ALLOWED_HOSTS"] = ["testserver"]  # the test client's host
    configured_here = configure_django(overrides)
    # The collector is made from the settings on the first request: let this test make its
    # own (monkeypatch puts back the one another test may have made).
    monkeypatch.setattr(collector_views, "_collector", None)
    try:
        with override_settings(**overrides):
            forget_other_recsdk_settings(keep=overrides)
            views: Any = importlib.import_module("shop.views")
            try:
                yield views
            finally:
                views.recommender.close()
                if collector_views._collector is not None:
                    collector_views._collector.store.close()
    finally:
        forget_modules("shop")
        if configured_here:
            unconfigure_django()


def test_the_django_shop(django_shop: Any) -> None:
    from django.test import Client

    client = Client()

    def send(
        method: str, path: str, *, form: dict[str, str] | None = None, payload: Any = None
    ) -> Answer:
        body, content_type = encoded(form, payload)
        answer = client.generic(method, path, body, content_type=content_type)
        return Answer(answer.status_code, answer["Content-Type"], answer.content.decode())

    walk_through_the_shop(send)
    make_mistakes(send, quoted_item_js='item_id:"a\\u0022\\u003Cb"')
    no_item = send("POST", "/checkout", form={"user_id": "u1", "order_id": "o-9"})
    assert (no_item.status, no_item.json()["field"]) == (422, "item_id")
    # The shop's forms need Django's CSRF token (the test client skips that check unless
    # asked); the collector's events endpoint is exempt.
    strict = Client(enforce_csrf_checks=True)
    form = {"user_id": "u3", "item_id": "sku-1", "order_id": "u3-0"}
    assert strict.post("/checkout", form).status_code == 403
    batch = json.dumps({"batch": [{**PAGE_EVENT, "anonymous_id": "a2"}]})
    events = strict.post("/recsdk/events", batch, content_type="application/json")
    assert events.status_code == 200


# -- The commands of the docstrings ------------------------------------------------------


@pytest.mark.parametrize(
    ("framework", "command", "said"),
    [
        ("flask", ["-m", "flask", "--app", "examples.flask_shop", "routes"], "/recsdk/<path"),
        ("django", [str(DJANGO_PROJECT / "manage.py"), "check"], "no issues"),
    ],
)
def test_the_commands_of_the_docstrings_load_the_shops(
    framework: str, command: list[str], said: str, tmp_path: Path
) -> None:
    pytest.importorskip(framework, reason=NEEDS.format(framework))
    env = {**os.environ, "RECSDK_DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}"}
    ran = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert said in ran.stdout
