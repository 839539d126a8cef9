"""Erasing shoppers and old events through the recommender: lists and models forget them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recommender.shop import T0, cosine, fill
from recsdk import EventStore, Recommender
from recsdk.recommender import state as state_module


@pytest.fixture
def full_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the full fits made from here on (a refresh makes one after an erasure)."""
    calls: list[int] = []
    fit_state: Callable[..., Any] = state_module.fit_state

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return fit_state(*args, **kwargs)

    monkeypatch.setattr(state_module, "fit_state", counted)
    return calls


def neighbours(rec: Recommender) -> list[list[tuple[str, float]]]:
    return [
        [(r.item_id, round(r.score, 6)) for r in rec.similar_items(f"{p}{n}", k=5)]
        for p in "kgb"
        for n in range(10)
    ]


def test_an_erased_shopper_is_forgotten_by_lists_at_once_and_by_models_at_refresh(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with Recommender(url, model=cosine()) as rec:
        fill(rec)
        rec.fit()
        before = neighbours(rec)
        assert rec.recommend("u0", k=8).item_ids != rec.recommend("stranger", k=8).item_ids
        assert rec.erase_user("u0") == 10  # 8 views and an order of two lines
        assert rec.recommend("u0", k=8).item_ids == rec.recommend("stranger", k=8).item_ids
        assert neighbours(rec) == before  # the models still count u0 until a refresh
        rec.refresh()
        assert rec._serving().erasures == rec.store.erasure_mark() > 0
        after = neighbours(rec)
        assert after != before
    with Recommender(url, model=cosine(), load=False, autosave=False) as fresh:
        fresh.fit()
        assert after == neighbours(fresh)


def test_an_erasure_elsewhere_makes_the_next_refresh_fit_afresh(
    rec: Recommender, db_url: str, full_fits: list[int]
) -> None:
    rec.track("view", user_id="u1", item_id="k2")
    rec.refresh()
    assert full_fits == []  # incremental
    with EventStore(db_url) as other_process:
        assert other_process.erase_user("u1") > 0
    rec.refresh()
    assert full_fits == [1]
    rec.refresh()
    assert full_fits == [1]  # once


def test_saved_versions_fitted_before_an_erasure_are_removed(
    rec: Recommender, db_url: str, full_fits: list[int]
) -> None:
    folder = rec.model_path
    assert folder is not None
    rec.track("view", user_id="u1", item_id="k2")
    rec.refresh()
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 2
    rec.erase_user("u1")
    rec.refresh()
    [kept] = [p.name for p in folder.iterdir() if p.is_dir()]
    assert (folder / "current").read_text() == kept
    with Recommender(db_url) as worker:
        assert worker._serving().erasures == rec.store.erasure_mark() > 0
        worker.refresh()
    assert full_fits == [1]  # the loaded state knew the erasure: no second full fit


def test_erase_before_drops_old_events_and_the_next_refresh_fits_afresh(
    rec: Recommender, full_fits: list[int]
) -> None:
    total = rec.store.counts().events
    erased = rec.erase_before(T0 + timedelta(hours=30))  # shoppers u0..u29 and their orders
    assert 0 < erased < total
    assert rec.store.counts().events == total - erased
    rec.refresh()
    assert full_fits == [1]
    assert rec._serving().erasures == rec.store.erasure_mark() > 0


def test_export_through_the_recommender(rec: Recommender) -> None:
    export = rec.export_user("u2")
    assert export == rec.store.export_user("u2")
    assert len(export.events) == 10
    assert rec.export_user(7).user_id == "7"  # type: ignore[arg-type]


def test_batch_lists_refit_first_after_an_erasure(rec: Recommender, full_fits: list[int]) -> None:
    before = rec.recommend_many(["u0", "stranger"], k=5)
    assert before.items[0].tolist() != before.items[1].tolist()  # from u0's model row
    rec.erase_user("u0")
    after = rec.recommend_many(["u0", "stranger"], k=5)
    assert full_fits == [1]
    assert after.items[0].tolist() == after.items[1].tolist()  # nothing left of u0's
    rec.recommend_many(["u1"], k=5)
    assert full_fits == [1]


def test_cached_lists_go_with_links_made_in_another_process(rec: Recommender, db_url: str) -> None:
    with EventStore(db_url) as collector:
        collector.link_identity("a1", "u0")  # rec never saw this link
    mine = rec.recommend(anonymous_id="a1", k=8).item_ids  # cached: u0's history
    assert mine == rec.recommend("u0", k=8).item_ids
    rec.erase_user("u0")
    stranger = rec.recommend("stranger", k=8).item_ids
    assert rec.recommend(anonymous_id="a1", k=8).item_ids == stranger
    assert rec.profile(anonymous_id="a1").orders == 0
