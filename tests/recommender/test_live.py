"""Live personalization: tracked events count at once, identities merge, caches invalidate.

The store-backed paths run on SQLite, PostgreSQL and MariaDB (the ``store_url`` fixture).
"""

from __future__ import annotations

from pathlib import Path

from recommender.shop import fill
from recsdk import EventStore, Recommender


def test_events_tracked_after_the_fit_change_the_next_answer(rec: Recommender) -> None:
    before = rec.recommend("newcomer", k=5)
    assert {r.reason_type for r in before} <= {"trending", "popular"}  # nothing known yet
    rec.track("view", user_id="newcomer", item_id="g0")
    after = rec.recommend("newcomer", k=5)
    assert after.item_ids != before.item_ids
    assert {r.reason for r in after if r.reason_type == "viewed"} == {
        "because you viewed Red shovel"
    }
    rec.track("purchase", user_id="newcomer", item_id=after[0].item_id, order_id="n1")
    assert after[0].item_id not in rec.recommend("newcomer", k=5).item_ids


def test_the_cache_answers_until_the_shopper_tracks(rec: Recommender) -> None:
    first = rec.recommend("u3", k=5)
    # An event stored behind the recommender's back is seen only after invalidate().
    rec.store.add({"type": "purchase", "user_id": "u3", "item_id": first[0].item_id,
                   "order_id": "elsewhere"})  # fmt: skip
    assert rec.recommend("u3", k=5).item_ids == first.item_ids
    rec.invalidate(user_id="u3")
    assert first[0].item_id not in rec.recommend("u3", k=5).item_ids


def test_anonymous_history_merges_into_the_user_after_login(store_url: str, tmp_path: Path) -> None:
    with Recommender(store_url, model_path=tmp_path / "model") as rec:
        fill(rec)
        rec.fit()
        rec.track("view", anonymous_id="visitor-1", item_id="b2")
        rec.track("purchase", anonymous_id="visitor-1", item_id="b3", order_id="v1")
        as_visitor = rec.recommend(anonymous_id="visitor-1", k=5)
        assert "b3" not in as_visitor.item_ids
        assert rec.recommend("shopper-1", k=5).item_ids != as_visitor.item_ids  # not linked yet
        rec.track("view", user_id="shopper-1", anonymous_id="visitor-1", item_id="b4")  # login
        as_user = rec.recommend("shopper-1", k=5, exclude_viewed=True)
        assert not {"b2", "b3", "b4"} & set(as_user.item_ids)
        assert rec.profile("shopper-1").items == 3
        # The visitor's cached answer was invalidated too: it is the user's history now.
        assert rec.profile(anonymous_id="visitor-1").items == 3


def test_identify_links_a_visitor_to_a_user(store_url: str, tmp_path: Path) -> None:
    with Recommender(store_url, model_path=tmp_path / "model") as rec:
        fill(rec)
        rec.fit()
        rec.track("purchase", anonymous_id="visitor-2", item_id="g4", order_id="v2")
        rec.recommend("shopper-2")  # cached before the link
        assert rec.identify("visitor-2", "shopper-2") is True
        assert rec.identify("visitor-2", "shopper-2") is False
        assert "g4" not in rec.recommend("shopper-2", k=30).item_ids
        assert rec.profile("shopper-2").orders == 1


def test_both_ids_merge_even_before_a_link(rec: Recommender) -> None:
    rec.track("purchase", anonymous_id="visitor-3", item_id="k9", order_id="v3")
    merged = rec.recommend("u0", anonymous_id="visitor-3", k=30)
    assert "k9" not in merged.item_ids
    assert rec.profile("u0", anonymous_id="visitor-3").orders == rec.profile("u0").orders + 1


def test_a_store_given_by_the_caller_stays_open(db_url: str, tmp_path: Path) -> None:
    store = EventStore(db_url)
    with Recommender(store, model_path=tmp_path / "m") as rec:
        fill(rec)
    assert store.counts().events > 0  # still usable
    store.close()
