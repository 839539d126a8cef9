"""Business rules: exactly k, and never an item the rules leave out, whatever the options."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from recommender.shop import SOLD_OUT
from recsdk import Recommender
from recsdk.events import TypeCode


def shopper_items(rec: Recommender, user: str) -> tuple[set[str], set[str]]:
    """Everything the shopper interacted with, and what they bought."""
    rows = rec.store.item_event_rows(user)
    names = rec.store.item_ids(row[0] for row in rows)
    seen = {n for n in names if n}
    bought = {n for n, row in zip(names, rows, strict=True) if n and row[1] == TypeCode.purchase}
    return seen, bought


def allowed_items(rec: Recommender, user: str | None, options: dict[str, Any]) -> set[str]:
    """What the rules allow, computed from the store and the catalog directly."""
    every = {name for _, name in rec.store.item_index()}
    catalog = rec.store.get_items(every)
    allowed = {i for i in every if i not in catalog or catalog[i].available}
    if user is not None:
        seen, bought = shopper_items(rec, user)
        if options.get("exclude_purchased", True):
            allowed -= bought
        if options.get("exclude_viewed", False):
            allowed -= seen
    allowed -= set(options.get("exclude") or ())
    if options.get("include") is not None:
        allowed &= set(options["include"])
    if options.get("category") is not None:
        allowed = {
            i for i in allowed if i in catalog and catalog[i].category == options["category"]
        }
    return allowed


def random_options(rng: random.Random, items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {"k": rng.choice([1, 3, 10, 25, 40])}
    if rng.random() < 0.3:
        options["category"] = rng.choice(["kitchen", "garden", "books", "nothing"])
    if rng.random() < 0.4:
        options["exclude"] = rng.sample(items, rng.randrange(1, 12))
    if rng.random() < 0.2:
        options["include"] = rng.sample(items, rng.randrange(0, 15))
    if rng.random() < 0.3:
        options["max_per_category"] = rng.choice([1, 2, 4])
    return options


def check(found: list[str], allowed: set[str], options: dict[str, Any], rec: Recommender) -> None:
    assert len(found) == len(set(found)), "no duplicates"
    assert set(found) <= allowed, f"not allowed: {set(found) - allowed}"
    assert len(found) == min(options["k"], len(allowed)), "exactly k"
    cap = options.get("max_per_category")
    if cap is not None and len(found):
        catalog = rec.store.get_items(allowed)
        counts = Counter(catalog[i].category for i in found if i in catalog)
        top = max(counts.values(), default=0)
        if top > cap:  # the cap gives way evenly, only when the list needs it
            for category in {c.category for i, c in catalog.items() if i not in found}:
                assert counts[category] >= top - 1, (options, found, counts)


def test_recommend_follows_the_rules_for_any_options(rec: Recommender) -> None:
    rng = random.Random(5)
    items = sorted(name for _, name in rec.store.item_index())
    users = [f"u{n}" for n in range(0, 60, 7)] + ["stranger"]
    for _ in range(150):
        user = rng.choice(users)
        options = random_options(rng, items)
        if rng.random() < 0.3:
            options["exclude_viewed"] = True
        if rng.random() < 0.2:
            options["exclude_purchased"] = False
        found = rec.recommend(user, **options).item_ids
        check(found, allowed_items(rec, user, options), options, rec)


def test_item_lists_follow_the_rules_for_any_options(rec: Recommender) -> None:
    rng = random.Random(6)
    items = sorted(name for _, name in rec.store.item_index())
    for _ in range(100):
        options = random_options(rng, items)
        item = rng.choice([*items, "unknown-item"])
        allowed = allowed_items(rec, None, options) - {item}
        check(rec.similar_items(item, **options).item_ids, allowed, options, rec)
        basket = rng.sample(items, rng.randrange(1, 4))
        allowed = allowed_items(rec, None, options) - set(basket)
        check(rec.bought_together(basket, **options).item_ids, allowed, options, rec)
        options.pop("max_per_category", None)
        allowed = allowed_items(rec, None, options)
        check(rec.trending(**options).item_ids, allowed, options, rec)


def test_purchases_are_excluded_by_default_views_on_request(rec: Recommender) -> None:
    seen, bought = shopper_items(rec, "u0")
    assert bought
    assert not bought & set(rec.recommend("u0", k=30).item_ids)
    assert not seen & set(rec.recommend("u0", k=20, exclude_viewed=True).item_ids)
    assert seen & set(rec.recommend("u0", k=30).item_ids)  # viewed items may come back


def test_sold_out_items_never_come_back_until_available(rec: Recommender) -> None:
    lists = [
        rec.recommend("u0", k=32).item_ids,
        rec.similar_items("k4", k=32).item_ids,
        rec.trending(k=32).item_ids,
        rec.bought_together("k0", k=32).item_ids,
    ]
    assert all(SOLD_OUT not in found for found in lists)
    rec.upsert_items([{"item_id": SOLD_OUT, "available": True}])
    assert SOLD_OUT in rec.trending(k=32).item_ids


def test_catalog_only(db_url: str) -> None:
    with Recommender(db_url, catalog_only=True, autosave=False) as rec:
        rec.track_many(
            [
                {"type": "view", "user_id": "u1", "item_id": "described"},
                {"type": "view", "user_id": "u1", "item_id": "undescribed"},
                {"type": "view", "user_id": "u2", "item_id": "described"},
            ]
        )
        rec.upsert_items([{"item_id": "described", "title": "Described"}])
        rec.fit()
        assert rec.trending(k=5).item_ids == ["described"]


def test_a_diverse_list_when_the_cap_allows_it(rec: Recommender) -> None:
    found = rec.recommend("u0", k=6, max_per_category=2)
    categories = Counter(r.category for r in found)
    assert len(found) == 6
    assert max(categories.values()) <= 2
