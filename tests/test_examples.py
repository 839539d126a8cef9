"""The examples run as their docstrings say."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).parent.parent


def test_the_fastapi_shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSDK_DATABASE_URL", f"sqlite:///{tmp_path / 'shop.db'}")
    monkeypatch.syspath_prepend(str(ROOT))
    shop: Any = importlib.import_module("examples.fastapi_shop")

    async def visit() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            answers = [await http.get("/products/sku-1")]  # renders before any fit
            for user, items in {
                "u1": ["sku-1", "sku-2"],
                "u2": ["sku-1", "sku-2", "sku-3"],
            }.items():
                for n, item in enumerate(items):
                    params = {"user_id": user, "item_id": item, "order_id": f"{user}-{n}"}
                    assert (await http.post("/checkout", params=params)).status_code == 200
            page_event = {"type": "view", "anonymous_id": "a1", "item_id": "sku-3"}
            answers.append(await http.post("/recsdk/events", json={"batch": [page_event]}))
            answers.append(await http.post("/admin/fit"))
            answers.append(await http.get("/products/sku-1"))
            answers.append(await http.get("/users/u1/recommendations"))
            answers.append(await http.get("/recsdk/recsdk.js"))
            answers.append(await http.get("/users/u1/data"))
            answers.append(await http.delete("/users/u1/data"))
            answers.append(await http.get("/users/u1/data"))
            return answers

    async def mistakes() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=shop.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            empty_user = {"user_id": "", "item_id": "sku-1", "order_id": "o-9"}
            return [
                await http.post("/checkout", params=empty_user),
                await http.get("/users/%01/recommendations"),
                await http.get("/products/" + "x" * 300),
                await http.get('/products/a"<b'),
            ]

    try:
        answers = asyncio.run(visit())
        before, event, fitted, page, recommended, script, exported, erased, gone = answers
        empty_user, control, too_long, quoted = asyncio.run(mistakes())
    finally:
        shop.rec.close()
    assert before.status_code == 200
    assert 'src="/recsdk/recsdk.js"' in before.text
    assert event.json()["accepted"] == 1
    assert fitted.json() == {"fitted": True}
    assert 'href="/products/sku-2"' in page.text  # bought together with sku-1
    assert recommended.json()[0]["item_id"] == "sku-3"  # bought by u2, who shares u1's taste
    assert script.headers["content-type"] == "application/javascript; charset=utf-8"
    assert [e["item_id"] for e in exported.json()["events"]] == ["sku-1", "sku-2"]
    assert erased.json() == {"erased_events": 2}
    assert gone.json()["events"] == []
    # The client's mistakes are answered 422 with the field, never 500.
    assert (empty_user.status_code, empty_user.json()["field"]) == (422, "user_id")
    assert (control.status_code, control.json()["field"]) == (422, "user_id")
    assert (too_long.status_code, too_long.json()["field"]) == (422, "item_id")
    assert quoted.status_code == 200
    assert 'item_id:"a\\"\\u003cb"' in quoted.text  # a JSON string: it cannot end the script


def test_the_quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    """The README's demo (``bash examples/demo.sh`` runs it): every step prints."""
    monkeypatch.syspath_prepend(str(ROOT))
    quickstart: Any = importlib.import_module("examples.quickstart")
    quickstart.main(["--db", str(tmp_path / "demo.db")])
    out = capsys.readouterr().out
    steps = [
        "Kernels ready",
        "Fitted in",
        "Similar to sku-3",
        "Bought together with sku-3",
        "Trending in tea",
        "at once, no refit",
        "refresh() updated the model",
        "Done in",
    ]
    assert [step for step in steps if step not in out] == []
    # The evaluation's table: the recommender ahead of popularity, as the README says.
    rows = [line.split() for line in out.splitlines()]
    ndcg = {row[0]: float(row[-3]) for row in rows if row and row[0] in ("recsdk", "popularity")}
    assert ndcg["recsdk"] > ndcg["popularity"]
