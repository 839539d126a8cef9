"""Cold start: shoppers with no history get trending items; new items get content neighbours."""

from __future__ import annotations

import numpy as np

from recsdk import Recommender


def test_a_cold_shopper_gets_trending_items(rec: Recommender) -> None:
    trending = rec.trending(k=5)
    for who in ({"user_id": "never-seen"}, {"anonymous_id": "first-visit"}, {}):
        found = rec.recommend(**who, k=5)  # type: ignore[arg-type]
        assert found.item_ids == trending.item_ids
        assert {r.reason for r in found} == {"trending"}


def test_a_cold_shopper_on_a_category_page_gets_that_category(rec: Recommender) -> None:
    found = rec.recommend("never-seen", k=5, category="books")
    assert {r.category for r in found} == {"books"}
    assert {r.reason for r in found} == {"trending in books"}
    assert found.item_ids == rec.trending(k=5, category="books").item_ids


def test_a_new_item_gets_neighbours_from_its_catalog_description(rec: Recommender) -> None:
    # k-new ("Red mug deluxe", kitchen, tags mug): no shopper touched it yet.
    found = rec.similar_items("k-new", k=3)
    assert found.item_ids[0] in {"k0", "k5"}  # the other mugs
    assert all(r.category == "kitchen" for r in found)
    assert found[0].reason == "similar to Red mug deluxe"
    assert found[0].score > 0


def test_an_item_added_after_the_fit_is_matched_at_once(rec: Recommender) -> None:
    rec.upsert_items([{"item_id": "b-new", "title": "Blue atlas of the world",
                       "category": "books", "tags": ["atlas"]}])  # fmt: skip
    assert rec.similar_items("b-new", k=2).item_ids[0] in {"b2", "b7"}  # the atlases
    # A shopper who viewed it gets its content neighbours too.
    rec.track("view", user_id="atlas-fan", item_id="b-new")
    found = rec.recommend("atlas-fan", k=2)
    assert found.item_ids[0] in {"b2", "b7"}
    assert found[0].reason == "because you viewed Blue atlas of the world"


def test_collaborative_neighbours_take_over_as_shoppers_arrive(rec: Recommender) -> None:
    state = rec._serving()
    ix = state.items.index["g-new"]
    assert float(state.collaborative_share(np.array([ix]))[0]) == 0.0
    # Shoppers who buy g-new with g9 teach the model a neighbour content cannot see.
    rec.track_many(
        [
            event
            for n in range(30)
            for event in (
                {"type": "purchase", "user_id": f"gardener{n}", "item_id": "g-new",
                 "order_id": f"go{n}"},
                {"type": "purchase", "user_id": f"gardener{n}", "item_id": "b8",
                 "order_id": f"go{n}"},
            )
        ]
    )  # fmt: skip
    before = rec.similar_items("g-new", k=3).item_ids
    assert "b8" not in before  # content alone: garden items
    rec.refresh()
    state = rec._serving()
    share = float(state.collaborative_share(np.array([ix]))[0])
    assert 0.8 < share <= 1.0
    assert rec.similar_items("g-new", k=3).item_ids[0] == "b8"
