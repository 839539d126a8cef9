"""Incremental refresh (the engine's partial_fit), background tasks, and batch lists."""

from __future__ import annotations

import time
from pathlib import Path

from recommender.shop import cosine, events, fill
from recsdk import Recommender


def snapshot(rec: Recommender) -> list[list[str]]:
    return [
        rec.recommend("u0", k=8).item_ids,
        rec.recommend("late-shopper", k=8).item_ids,
        rec.similar_items("k1", k=6).item_ids,
        rec.bought_together("b0", k=3).item_ids,
        rec.trending(k=6).item_ids,
    ]


def late_events() -> list[dict[str, object]]:
    views: list[dict[str, object]] = [
        {"type": "view", "user_id": f"u{n}", "item_id": "g7"} for n in range(10, 20)
    ]
    return [
        {"type": "view", "user_id": "late-shopper", "item_id": "g7"},
        {"type": "purchase", "user_id": "u0", "item_id": "g7", "order_id": "late-1"},
        {"type": "purchase", "user_id": "u0", "item_id": "b5", "order_id": "late-1"},
        *views,
    ]


def test_refresh_matches_a_full_fit(tmp_path: Path) -> None:
    incremental = Recommender(f"sqlite:///{tmp_path / 'a.db'}", model=cosine())
    full = Recommender(f"sqlite:///{tmp_path / 'b.db'}", model=cosine())
    for rec in (incremental, full):
        fill(rec)
        rec.fit()
        rec.track_many(late_events())
    incremental.refresh()
    full.fit()
    assert snapshot(incremental) == snapshot(full)
    assert incremental._serving().watermark == full._serving().watermark
    incremental.close()
    full.close()


def test_refresh_reads_new_items_and_catalog_changes(rec: Recommender) -> None:
    rec.store.upsert_items([{"item_id": "fresh", "title": "Fresh", "category": "books"}])
    rec.store.upsert_items([{"item_id": "k1", "available": False}])  # behind its back
    rec.refresh()
    assert "fresh" in rec.trending(k=40, category="books").item_ids
    assert "k1" not in rec.similar_items("k0", k=40).item_ids


def test_refit_every_refreshes_in_the_background(db_url: str) -> None:
    with Recommender(db_url, refit_every=0.1, autosave=False) as rec:
        fill(rec)
        rec.fit()
        generation = rec._serving().generation
        deadline = time.monotonic() + 20
        while rec._serving().generation == generation and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec._serving().generation > generation


def test_refit_every_runs_in_a_process_that_never_asks_for_lists(db_url: str) -> None:
    # A fitting process: it tracks and fits, and never calls a list method.
    with Recommender(db_url, refit_every=0.1, autosave=False) as rec:
        fill(rec)
        rec.fit()
        assert rec._state is not None
        generation = rec._state.generation
        deadline = time.monotonic() + 20
        while rec._state.generation == generation and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rec._state.generation > generation


def test_reload_every_follows_the_trainer(rec: Recommender, db_url: str) -> None:
    with Recommender(db_url, reload_every=0.1, autosave=False) as worker:
        generation = worker._serving().generation
        rec.fit()  # the trainer saves a new version
        deadline = time.monotonic() + 20
        while worker._serving().generation == generation and time.monotonic() < deadline:
            worker.trending(k=1)
            time.sleep(0.05)
        assert worker._serving().generation > generation


def test_batch_lists_match_single_lists(tmp_path: Path) -> None:
    with Recommender(f"sqlite:///{tmp_path / 'c.db'}", category_boost=0.0) as rec:
        rec.track_many(events())  # no catalog: no content blending, as in batches
        rec.fit()
        users = [f"u{n}" for n in range(60)] + ["unknown"]
        batch = rec.recommend_many(users, k=7)
        assert len(batch) == len(users)
        for user in users:
            single = rec.recommend(user, k=7)
            assert batch.item_ids(user) == single.item_ids, user
            assert [r.reason for r in batch[user]] == [r.reason for r in single], user
        # No history, nothing personal: the codes and scores say so, as a single list does.
        unknown = users.index("unknown")
        assert (batch.reasons[unknown] > 0).all()
        assert [r.score for r in batch["unknown"]] == [
            r.score for r in rec.recommend("unknown", k=7)
        ]
        everyone = rec.recommend_many(k=3)
        assert sorted(everyone.user_ids) == sorted(users[:-1])
        assert all(len(found) == 3 for _, found in everyone)


def test_batch_lists_follow_the_rules(rec: Recommender) -> None:
    batch = rec.recommend_many(k=12)
    for _, found in batch:
        assert len(found) == len(set(found)) == 12
        assert "k3" not in found  # sold out
    orders = {e["user_id"]: e["item_id"] for e in events() if e["type"] == "purchase"}
    for user, item in orders.items():
        assert item not in batch.item_ids(str(user))
