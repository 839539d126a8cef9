"""recsdk in a FastAPI shop: the collector, the browser tracker and recommendations.

Run it with FastAPI and uvicorn installed (``pip install recsdk fastapi uvicorn``)::

    uvicorn examples.fastapi_shop:app

then open http://127.0.0.1:8000/products/sku-1. The page loads the tracker from the
collector (``/recsdk/recsdk.js``), which records the product view; the page lists similar
items. ``POST /checkout`` records a purchase from the server. ``RECSDK_DATABASE_URL`` picks
the database (default: ``recsdk-shop.db`` in the working directory); ``POST /admin/fit``
fits the model on what was tracked so far (a real shop would fit on a schedule).
``GET`` and ``DELETE /users/{user_id}/data`` export and erase a shopper's data.
"""

from __future__ import annotations

import html
import json
import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from recsdk import Recommender
from recsdk.collector import CollectorConfig, asgi_app
from recsdk.errors import NotFitted, ValidationError

rec = Recommender(os.environ.get("RECSDK_DATABASE_URL", "sqlite:///recsdk-shop.db"))
rec.upsert_items(
    [
        {"item_id": f"sku-{n}", "title": title, "category": category, "price": price}
        for n, (title, category, price) in enumerate(
            [
                ("Red mug", "kitchen", 9.5),
                ("Blue mug", "kitchen", 9.5),
                ("Teapot", "kitchen", 24.0),
                ("Garden gloves", "garden", 12.0),
                ("Trowel", "garden", 8.0),
            ],
            start=1,
        )
    ]
)

app = FastAPI()


@app.exception_handler(ValidationError)
def bad_input(request: Request, error: ValidationError) -> JSONResponse:
    # An id that recsdk refuses (empty, too long, control characters) is the client's
    # mistake: answer 422 naming the field, never 500.
    return JSONResponse({"field": error.field, "error": error.reason}, status_code=422)


# The pages' events arrive here; open to any page of this site (no key, same origin).
collector = asgi_app(rec.store, prefix="", config=CollectorConfig(), recommender=rec)
app.mount("/recsdk", collector)

PAGE = """<!doctype html>
<html><head><title>{title}</title>
<script>
!function(w,d,s){{w.recsdk=w.recsdk||function(){{(w.recsdk.q=w.recsdk.q||[]).push(arguments)}};s=d.createElement("script");s.async=1;s.src="/recsdk/recsdk.js";d.head.appendChild(s)}}(window,document);
recsdk("init",{{endpoint:"/recsdk"}});
recsdk("view",{{item_id:{item_id_js}}});
</script></head>
<body><h1>{title}</h1><h2>You may also like</h2><ul>{similar}</ul></body></html>
"""


@app.get("/products/{item_id}", response_class=HTMLResponse)
def product_page(item_id: str) -> str:
    # A plain def: FastAPI runs it in its thread pool, so the store and the engine never
    # hold up the event loop.
    entry = rec.store.get_items([item_id]).get(item_id)
    title = (entry.title if entry else None) or item_id
    try:
        similar = rec.similar_items(item_id, k=4)
    except NotFitted:  # nothing fitted yet: the page still renders
        similar = None
    links = "".join(
        f'<li><a href="/products/{html.escape(r.item_id)}">{html.escape(r.title or "")}</a></li>'
        for r in (similar or [])
    )
    # In the script, the id is a JSON string with "<" escaped, so "</script>" cannot end it.
    item_id_js = json.dumps(item_id).replace("<", "\\u003c")
    return PAGE.format(title=html.escape(title), item_id_js=item_id_js, similar=links)


@app.post("/checkout")
def checkout(user_id: str, item_id: str, order_id: str) -> dict[str, bool]:
    # This app holds the store, so it writes the event at once (a few milliseconds, in
    # FastAPI's thread pool). An app whose collector runs elsewhere would use
    # recsdk.AsyncTracker, which sends in the background.
    rec.track("purchase", user_id=user_id, item_id=item_id, order_id=order_id, quantity=1)
    return {"ok": True}


@app.get("/users/{user_id}/recommendations")
def recommendations(user_id: str) -> list[dict[str, object]]:
    try:
        found = rec.recommend(user_id, k=4)
    except NotFitted:
        return []
    return [{"item_id": r.item_id, "title": r.title, "reason": r.reason} for r in found]


@app.post("/admin/fit")
def fit() -> dict[str, bool]:
    rec.fit()
    return {"fitted": True}


# A shopper's right to see and delete their data (docs/privacy.md). A real shop serves
# these to the logged-in shopper only, for their own id, after its own login check.
@app.get("/users/{user_id}/data")
def export_data(user_id: str) -> dict[str, object]:
    return rec.export_user(user_id).to_dict()


@app.delete("/users/{user_id}/data")
def erase_data(user_id: str) -> dict[str, int]:
    return {"erased_events": rec.erase_user(user_id)}
