"""The few lines of the README work exactly as written, and the results' shapes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import recsdk
from recsdk import InvalidEvent, NotFitted, Recommendation, Recommendations, Recommender
from recsdk.errors import StoreError, ValidationError
from recsdk.recommender import REASON_TYPES


def test_the_few_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from recsdk import Recommender

    rec = Recommender("sqlite:///shop.db")
    rec.track("view", user_id="u1", item_id="sku-1")
    rec.track("purchase", user_id="u1", item_id="sku-2", order_id="o-1", price=9.5, quantity=2)
    rec.track_many(
        [
            {"type": "view", "user_id": "u2", "item_id": "sku-1",
             "timestamp": "2026-11-01T10:00:00Z"},
            {"type": "view", "user_id": "u2", "item_id": "sku-3"},
            {"type": "purchase", "user_id": "u2", "item_id": "sku-1", "order_id": "o-2"},
            {"type": "purchase", "user_id": "u2", "item_id": "sku-2", "order_id": "o-2"},
        ]
    )  # fmt: skip
    rec.upsert_items(
        [{"item_id": "sku-1", "title": "Red mug", "category": "kitchen", "tags": ["mug"],
          "price": 9.5}]
    )  # fmt: skip
    rec.fit()
    results = rec.recommend("u1", k=10)
    assert all(r.item_id and isinstance(r.score, float) and r.reason for r in results)
    assert rec.similar_items("sku-1", k=10)
    assert rec.bought_together("sku-1", k=5)[0].item_id == "sku-2"
    assert rec.bought_together(["sku-1", "sku-7"])
    assert rec.trending(k=10, category="kitchen").item_ids == ["sku-1"]
    rec.close()
    with pytest.raises(StoreError, match="is closed"):  # the store it opened
        rec.track("view", user_id="u1", item_id="sku-1")
    assert (tmp_path / "shop.db").exists()
    assert (tmp_path / "shop.db.recsdk" / "current").exists()
    with Recommender() as default:  # recsdk.db in the working directory
        assert default.store.url.database == "recsdk.db"


def test_results_carry_reasons_catalog_fields_and_a_rec_id(rec: Recommender) -> None:
    results = rec.recommend("u0", k=5)
    assert isinstance(results, Recommendations)
    assert len(results) == 5
    assert uuid.UUID(results.rec_id)
    assert rec.recommend("u0", k=5).rec_id != results.rec_id  # one per showing, cached or not
    first = results[0]
    assert isinstance(first, Recommendation)
    assert first.reason_type in REASON_TYPES
    assert first.title
    assert first.category
    assert first.url
    assert first.image_url
    assert first.price is not None
    assert results[1:3] == tuple(results)[1:3]
    data = json.loads(results.to_json())
    assert data["rec_id"] == results.rec_id
    assert [item["item_id"] for item in data["items"]] == results.item_ids
    assert set(data["items"][0]) >= {"item_id", "score", "reason", "title", "url", "price"}


def test_every_reason_names_its_cause(rec: Recommender) -> None:
    seen = {r.reason_type for r in rec.recommend("u0", k=25)}
    assert "viewed" in seen or "bought" in seen
    for r in rec.recommend("u0", k=25):
        if r.reason_type in ("viewed", "bought"):
            assert r.reason_item_id is not None
            title = rec.store.get_items([r.reason_item_id])[r.reason_item_id].title
            verb = "viewed" if r.reason_type == "viewed" else "bought"
            assert r.reason == f"because you {verb} {title}"
    for r in rec.bought_together("k0", k=3):
        if r.reason_type == "bought_together":
            assert r.reason == "bought together with Red mug"
    assert {r.reason for r in rec.trending(k=3, category="garden")} == {"trending in garden"}
    assert rec.similar_items("k0", k=1)[0].reason == "similar to Red mug"


def test_bad_input_names_the_field(rec: Recommender) -> None:
    with pytest.raises(InvalidEvent, match="item_id"):
        rec.track("view", user_id="u1")
    before = rec.store.counts().events
    with pytest.raises(InvalidEvent, match="item_id: event 1: "):
        rec.track_many(
            [{"type": "view", "user_id": "u", "item_id": "i"}, {"type": "view", "user_id": "u"}]
        )
    assert rec.store.counts().events == before  # nothing of the batch is stored
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: rec.recommend("u1", k=0), "k"),
        (lambda: rec.recommend("u1", k="3"), "k"),  # type: ignore[arg-type]
        (lambda: rec.recommend("", k=3), "user_id"),
        (lambda: rec.recommend("u1", max_per_category=0), "max_per_category"),
        (lambda: rec.similar_items("x" * 300), "item_id"),
        (lambda: rec.bought_together([]), "item_ids"),
        (lambda: rec.trending(k=-1), "k"),
        (lambda: rec.recommend(["u1"]), "user_id"),  # type: ignore[arg-type]
        (lambda: rec.profile(anonymous_id=1.5), "anonymous_id"),  # type: ignore[arg-type]
        (lambda: rec.recommend_many([""]), "user_ids"),
        (lambda: rec.recommend("u1", exclude=[None]), "exclude"),  # type: ignore[list-item]
    ]
    for call, field in calls:
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "cosine"),
        ("cache_ttl", -1),
        ("cache_size", 0),
        ("history_limit", 0),
        ("category_boost", -1),
        ("trending_half_life_days", 0),
        ("refit_every", "x"),
        ("reload_every", 0),
    ],
)
def test_bad_settings_name_themselves(tmp_path: Path, field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Recommender(f"sqlite:///{tmp_path / 's.db'}", **{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_a_batch_prints_as_a_line(rec: Recommender) -> None:
    batch = rec.recommend_many(["u0", "u1", "u2", "u3"], k=3)
    assert repr(batch) == "<RecommendationBatch of 4 users (u0, u1, u2, ...), k=3>"


def test_integer_ids_are_the_strings_events_make_of_them(tmp_path: Path) -> None:
    # The signatures say str; at run time integers pass, as they do in events.
    with Recommender(f"sqlite:///{tmp_path / 'ints.db'}") as rec:
        anything: Any = rec
        for user, items in {5: [1, 2, 3], 6: [2, 3, 4], 7: [1, 3, 4]}.items():
            for item in items:
                rec.track("view", user_id=user, item_id=item)
        rec.fit()
        assert anything.recommend(5, k=2).item_ids == rec.recommend("5", k=2).item_ids
        same_visitor = anything.recommend(anonymous_id=5).item_ids
        assert same_visitor == rec.recommend(anonymous_id="5").item_ids
        assert anything.profile(5).events == rec.profile("5").events == 3
        assert "4" not in anything.recommend(5, k=3, exclude=4).item_ids
        assert rec.recommend_many("5").user_ids == ["5"]  # one id, not its characters
        batch = anything.recommend_many([5])
        assert batch.item_ids("5") == rec.recommend_many(["5"]).item_ids("5")


def test_nothing_before_a_fit(db_url: str) -> None:
    with Recommender(db_url, load=False) as rec, pytest.raises(NotFitted, match="fit"):
        rec.recommend("u1")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda rec: rec.recommend("\x01"), "user_id"),
        (lambda rec: rec.recommend(anonymous_id=""), "anonymous_id"),
        (lambda rec: rec.recommend("u1", k=0), "k"),
        (lambda rec: rec.recommend("u1", exclude=["a", None]), "exclude"),
        (lambda rec: rec.similar_items("x" * 300), "item_id"),
        (lambda rec: rec.similar_items("sku-1", category=""), "category"),
        (lambda rec: rec.bought_together([]), "item_ids"),
        (lambda rec: rec.bought_together(["sku-1", ""]), "item_ids"),
        (lambda rec: rec.trending(k=-1), "k"),
        (lambda rec: rec.recommend_many(["\x01"]), "user_ids"),
        (lambda rec: rec.profile(""), "user_id"),
    ],
)
def test_bad_arguments_are_named_before_a_fit_too(
    db_url: str, call: Callable[[Recommender], object], field: str
) -> None:
    """A web app answers a bad argument as the client's mistake, fitted or not."""
    with Recommender(db_url, load=False) as rec, pytest.raises(ValidationError) as raised:
        call(rec)
    assert raised.value.field == field


def test_the_package_exports_it_lazily() -> None:
    assert recsdk.Recommender is Recommender
    assert "Recommender" in recsdk.__all__
