"""A small shop for the recommender's tests: a catalog, shoppers, orders, on a real database.

Three categories of ten items each. Shoppers favour one category; some orders pair a mug
with a saucer, a shovel with gloves, a cookbook with a novel; a few items are described in
the catalog but nobody touched them yet (cold items), one is sold out.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

from recsdk import Recommender
from recsdk.engine import ItemSimilarity

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

CATEGORIES = {"kitchen": "k", "garden": "g", "books": "b"}
WORDS = {
    "kitchen": ["mug", "plate", "bowl", "kettle", "saucer"],
    "garden": ["shovel", "gloves", "hose", "rake", "pot"],
    "books": ["cookbook", "novel", "atlas", "poems", "comic"],
}
COLD = ["k-new", "g-new"]  # described, never touched
SOLD_OUT = "k3"


def catalog() -> list[dict[str, Any]]:
    items = []
    for category, prefix in CATEGORIES.items():
        for n in range(10):
            word = WORDS[category][n % 5]
            items.append(
                {
                    "item_id": f"{prefix}{n}",
                    "title": f"{['Red', 'Blue'][n // 5]} {word}",
                    "category": category,
                    "tags": [word, category],
                    "price": 5.0 + n,
                    "attributes": {"url": f"/p/{prefix}{n}", "image_url": f"/i/{prefix}{n}.jpg"},
                }
            )
    items.append({"item_id": "k-new", "title": "Red mug deluxe", "category": "kitchen",
                  "tags": ["mug", "kitchen"], "price": 20.0})  # fmt: skip
    items.append({"item_id": "g-new", "title": "Blue gloves", "category": "garden",
                  "tags": ["gloves", "garden"], "price": 7.0})  # fmt: skip
    return items


def events(seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    pairs = [("k0", "k4"), ("g0", "g1"), ("b0", "b1")]
    for user in range(60):
        category = list(CATEGORIES)[user % 3]
        prefix = CATEGORIES[category]
        for step in range(8):
            if rng.random() < 0.8:
                item = f"{prefix}{rng.randrange(10)}"
            else:
                item = f"{rng.choice(list(CATEGORIES.values()))}{rng.randrange(10)}"
            moment = T0 + timedelta(hours=user, minutes=step)
            out.append(
                {"type": "view", "user_id": f"u{user}", "item_id": item,
                 "timestamp": moment.isoformat()}
            )  # fmt: skip
        if user % 2 == 0:
            first, second = pairs[user % 3]
            for line, item in enumerate((first, second)):
                out.append(
                    {"type": "purchase", "user_id": f"u{user}", "item_id": item,
                     "order_id": f"o{user}", "price": 9.5, "quantity": 1 + line,
                     "timestamp": (T0 + timedelta(hours=user, minutes=30)).isoformat()}
                )  # fmt: skip
    return out


def fill(rec: Recommender) -> None:
    rec.upsert_items(catalog())
    rec.track_many(events())
    rec.upsert_items([{"item_id": SOLD_OUT, "available": False}])


def cosine() -> ItemSimilarity:
    """A model whose incremental updates are exact (bm25 refits fully)."""
    return ItemSimilarity(measure="cosine", n_neighbors=20)
