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
            return answers

    try:
        before, event, fitted, page, recommended, script = asyncio.run(visit())
    finally:
        shop.rec.close()
    assert before.status_code == 200
    assert 'src="/recsdk/recsdk.js"' in before.text
    assert event.json()["accepted"] == 1
    assert fitted.json() == {"fitted": True}
    assert 'href="/products/sku-2"' in page.text  # bought together with sku-1
    assert recommended.json()[0]["item_id"] == "sku-3"  # bought by u2, who shares u1's taste
    assert script.headers["content-type"] == "application/javascript; charset=utf-8"
