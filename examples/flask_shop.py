"""recsdk in a Flask shop: the collector extension, the browser tracker and recommendations.

Run it with Flask installed (``pip install "recsdk[flask]"``), from the repository root::

    flask --app examples.flask_shop run

then open http://127.0.0.1:5000/products/sku-1. The page loads the tracker from the
collector (``/recsdk/recsdk.js``), which records the product view; the page lists similar
items. ``POST /checkout`` (form fields ``user_id``, ``item_id``, ``order_id``) records a
purchase from the server. ``RECSDK_DATABASE_URL`` picks the database (default:
``recsdk-shop.db`` in the working directory); ``POST /admin/fit`` fits the model on what was
tracked so far (a real shop would fit on a schedule). ``GET`` and ``DELETE
/users/<user_id>/data`` export and erase a shopper's data, as does
``flask --app examples.flask_shop recsdk export-user --user-id u1`` (docs/privacy.md).
"""

from __future__ import annotations

import os

from flask import Flask, render_template_string, request

from recsdk import Recommender
from recsdk.collector.flask import RecSDK
from recsdk.errors import NotFitted, ValidationError

app = Flask(__name__)
app.config.from_mapping(
    RECSDK_DATABASE_URL=os.environ.get("RECSDK_DATABASE_URL", "sqlite:///recsdk-shop.db"),
)

rec = Recommender(app.config["RECSDK_DATABASE_URL"])
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

# The pages' events arrive at the collector (POST /recsdk/events, the default
# RECSDK_PREFIX), open to any page of this site (no key, same origin). It writes to the
# recommender's store and tells the recommender whose history changed.
RecSDK(app, store=rec.store, recommender=rec)


@app.errorhandler(ValidationError)
def bad_input(error: ValidationError) -> tuple[dict[str, str], int]:
    # An id that recsdk refuses (empty, too long, control characters) is the client's
    # mistake: answer 422 naming the field, never 500.
    return {"field": error.field, "error": error.reason}, 422


# Jinja escapes the HTML; in the script, |tojson makes the id a JSON string with "<"
# escaped, so "</script>" cannot end it.
PAGE = """<!doctype html>
<html><head><title>{{ title }}</title>
<script>
!function(w,d,s){w.recsdk=w.recsdk||function(){(w.recsdk.q=w.recsdk.q||[]).push(arguments)};s=d.createElement("script");s.async=1;s.src="/recsdk/recsdk.js";d.head.appendChild(s)}(window,document);
recsdk("init",{endpoint:"/recsdk"});
recsdk("view",{item_id:{{ item_id|tojson }}});
</script></head>
<body><h1>{{ title }}</h1><h2>You may also like</h2><ul>
{%- for item in similar %}
<li><a href="{{ url_for('product_page', item_id=item.item_id) }}">{{ item.title or "" }}</a></li>
{%- endfor %}
</ul></body></html>
"""


@app.get("/products/<item_id>")
def product_page(item_id: str) -> str:
    entry = rec.store.get_items([item_id]).get(item_id)
    title = (entry.title if entry else None) or item_id
    try:
        similar = list(rec.similar_items(item_id, k=4))
    except NotFitted:  # nothing fitted yet: the page still renders
        similar = []
    return render_template_string(PAGE, title=title, item_id=item_id, similar=similar)


@app.post("/checkout")
def checkout() -> dict[str, bool]:
    # This app holds the store, so it writes the event at once (a few milliseconds). An app
    # whose collector runs elsewhere would use recsdk.AsyncTracker, which sends in the
    # background.
    form = request.form
    rec.track(
        "purchase",
        user_id=form["user_id"],
        item_id=form["item_id"],
        order_id=form["order_id"],
        quantity=1,
    )
    return {"ok": True}


@app.get("/users/<user_id>/recommendations")
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
@app.get("/users/<user_id>/data")
def export_data(user_id: str) -> dict[str, object]:
    return rec.export_user(user_id).to_dict()


@app.delete("/users/<user_id>/data")
def erase_data(user_id: str) -> dict[str, int]:
    return {"erased_events": rec.erase_user(user_id)}
