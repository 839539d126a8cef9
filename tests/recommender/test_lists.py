"""Bought together, trending and the shopper profile."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from recommender.shop import catalog, events
from recsdk import Recommender


def test_bought_together_from_orders(rec: Recommender) -> None:
    found = rec.bought_together("k0", k=3)
    assert found[0].item_id == "k4"
    assert found[0].reason_type == "bought_together"
    assert found[0].reason_item_id == "k0"
    assert len(found) == 3  # then similar items, trending...
    assert found[1].reason_type != "bought_together"


def test_bought_together_for_a_basket_names_the_partner(rec: Recommender) -> None:
    found = rec.bought_together(["g0", "b0"], k=4)
    partners = {r.item_id: r.reason_item_id for r in found if r.reason_type == "bought_together"}
    assert partners == {"g1": "g0", "b1": "b0"}
    assert not {"g0", "b0"} & set(found.item_ids)


def test_bought_together_from_sessions(db_url: str) -> None:
    with Recommender(db_url, autosave=False) as rec:
        rec.track_many(
            [
                {"type": "add_to_cart", "user_id": f"s{n}", "item_id": item, "session_id": f"x{n}"}
                for n in range(3)
                for item in ("tent", "stove")
            ]
            + [{"type": "view", "user_id": "s9", "item_id": "map"}]
        )
        rec.fit()
        assert rec.bought_together("tent", k=1)[0].item_id == "stove"


def test_trending_decays_with_time(db_url: str) -> None:
    now = datetime(2026, 11, 29, tzinfo=timezone.utc)
    with Recommender(db_url, autosave=False, trending_half_life_days=7) as rec:
        long_ago = (now - timedelta(days=60)).isoformat()
        old = [
            {"type": "view", "user_id": f"o{n}", "item_id": "old-hit", "timestamp": long_ago}
            for n in range(20)
        ]
        new = [
            {"type": "view", "user_id": f"n{n}", "item_id": "new-hit", "timestamp": now.isoformat()}
            for n in range(3)
        ]
        rec.track_many([*old, *new])
        rec.upsert_items([{"item_id": "old-hit", "category": "c"},
                          {"item_id": "new-hit", "category": "c"}])  # fmt: skip
        rec.fit()
        assert rec.trending(k=2).item_ids == ["new-hit", "old-hit"]
        assert rec.trending(k=2, category="c").item_ids == ["new-hit", "old-hit"]
        assert [r.reason for r in rec.trending(k=2, category="c")] == ["trending in c"] * 2
        # Scored by the trend relative to the top item's: 3 fresh views against 20 views
        # of 60 days ago, 2 ** (60 / 7) times lighter each.
        scores = [r.score for r in rec.trending(k=2)]
        assert scores == pytest.approx([1.0, 20 * 2 ** (-60 / 7) / 3], rel=1e-5)


def test_the_profile(rec: Recommender) -> None:
    profile = rec.profile("u0")
    assert profile.events == 10  # 8 views and one order of two lines
    assert profile.orders == 1
    assert profile.monetary == pytest.approx(9.5 * 1 + 9.5 * 2)
    assert profile.average_order_value == pytest.approx(28.5)
    assert profile.preferred_categories[0] == "kitchen"  # u0 favours kitchen (0 % 3)
    assert profile.recency_days is not None
    assert profile.recency_days >= 0
    assert profile.first_seen is not None
    assert profile.last_seen is not None
    assert profile.first_seen <= profile.last_seen
    assert rec.profile("nobody").events == 0


def test_preferred_categories_lift_their_items(db_url: str) -> None:
    def first_categories(boost: float) -> list[str | None]:
        with Recommender(db_url, autosave=False, load=False, category_boost=boost) as rec:
            rec.fit()
            return [r.category for r in rec.recommend("u1", k=10)]

    with Recommender(db_url, autosave=False) as rec:
        rec.upsert_items(catalog())
        rec.track_many(events())
    plain = first_categories(0.0).count("garden")
    lifted = first_categories(5.0).count("garden")  # u1 favours garden
    assert lifted >= plain
