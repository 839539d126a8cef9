"""ItemSimilarity's serving API, persistence and incremental updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_reference import random_matrix, score_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsdk.datasets import synthetic_shop
from recsdk.engine import ItemSimilarity, NotFitted, UserItemMatrix, Weighting
from recsdk.engine.matrix import DEFAULT_TYPE_WEIGHTS


@pytest.fixture(scope="module")
def shop_model() -> ItemSimilarity:
    shop = synthetic_shop(400, 120, 4000, n_categories=10, seed=3)
    return ItemSimilarity(n_neighbors=8).fit(shop)


def test_not_fitted() -> None:
    with pytest.raises(NotFitted):
        ItemSimilarity().similar_items(0)


def test_similar_items_exactly_k(shop_model: ItemSimilarity) -> None:
    for item in range(0, 120, 7):
        items, scores = shop_model.similar_items(item, k=15, exclude=[1, 2, 3])
        assert len(items) == 15
        assert len(set(items.tolist())) == 15
        assert item not in items.tolist()
        assert not {1, 2, 3} & set(items.tolist())
        assert np.all(np.diff(scores) <= 0)


def test_k_larger_than_catalog(shop_model: ItemSimilarity) -> None:
    items, _ = shop_model.similar_items(5, k=500)
    assert sorted(items.tolist()) == sorted(set(range(120)) - {5})
    items, _ = shop_model.similar_items(5, k=500, fill=False)
    assert len(items) <= 8


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(0, 25),
    n_history=st.integers(0, 6),
    fill=st.booleans(),
    exclude_history=st.booleans(),
    trend_weight=st.sampled_from([0.0, 0.3, 5.0]),
)
def test_score_matches_reference(
    seed: int, k: int, n_history: int, fill: bool, exclude_history: bool, trend_weight: float
) -> None:
    rng = np.random.default_rng(seed)
    m = random_matrix(rng, 30, 20, 0.2)
    model = ItemSimilarity(n_neighbors=4, trend_weight=trend_weight).fit(m)
    history = rng.choice(20, size=n_history, replace=False).astype(np.int32)
    weights = rng.integers(1, 4, size=n_history).astype(np.float64)
    extra = rng.choice(20, size=2, replace=False).astype(np.int32)
    items, scores = model.score(
        history, weights, k=k, exclude=extra, exclude_history=exclude_history, fill=fill
    )
    state = model._state
    assert state is not None
    excluded = set(extra.tolist()) | (set(history.tolist()) if exclude_history else set())
    ref_items, ref_scores = score_reference(
        state.neighbors[:, :4], state.scores[:, :4], history, weights, excluded,
        state.popular_order(), k, fill, state.prior(trend_weight)[0],
    )  # fmt: skip
    assert items.tolist() == ref_items
    np.testing.assert_array_equal(scores, np.asarray(ref_scores, dtype=np.float32))
    # Items outside the catalog in ``exclude`` change nothing.
    beyond = np.concatenate([extra, [-3, 25]]).astype(np.int32)
    again, _ = model.score(
        history, weights, k=k, exclude=beyond, exclude_history=exclude_history, fill=fill
    )
    assert again.tolist() == ref_items
    explained = model.explain(
        history, weights, k=k, exclude=extra, exclude_history=exclude_history, fill=fill
    )
    assert explained.items.tolist() == ref_items
    assert explained.sources.tolist() == [
        _leading_source(state.neighbors[:, :4], state.scores[:, :4], history, weights, j)
        for j in ref_items
    ]
    # Items outside the catalog in the history count for nothing; sources still give
    # positions in the history as passed.
    padded = np.concatenate([[-1], history, [99]]).astype(np.int64)
    padded_weights = np.concatenate([[1.0], weights, [2.0]])
    with_unknown = model.explain(
        padded, padded_weights, k=k, exclude=extra, exclude_history=exclude_history, fill=fill
    )
    assert with_unknown.items.tolist() == ref_items
    assert with_unknown.sources.tolist() == [
        s + 1 if s >= 0 else -1 for s in explained.sources.tolist()
    ]
    _, best = model.score(
        history, weights, k=1, exclude=extra, exclude_history=exclude_history, fill=False,
        trend=False,
    )  # fmt: skip
    assert explained.top == pytest.approx(float(best[0]) if len(best) else 0.0, rel=1e-6)
    # The batch form gives the same rows.
    hist = UserItemMatrix.from_coo(
        np.zeros(n_history, dtype=np.int32), history, weights, n_users=1, n_items=20
    )
    ex = UserItemMatrix.from_coo(np.zeros(2, dtype=np.int32), extra, n_users=1, n_items=20)
    many_items, _many_scores = model.score_many(
        hist, k=k, exclude=ex, exclude_history=exclude_history, fill=fill
    )
    assert many_items[0][many_items[0] >= 0].tolist() == ref_items
    alone, _ = model.score(history, weights, k=k, exclude_history=exclude_history, fill=fill)
    many_items, _many_scores = model.score_many(
        hist, k=k, exclude_history=exclude_history, fill=fill
    )
    assert many_items[0][many_items[0] >= 0].tolist() == alone.tolist()
    wider = UserItemMatrix.from_coo(
        np.zeros(3, dtype=np.int32), np.append(extra, 25), n_users=1, n_items=30
    )
    many_items, _many_scores = model.score_many(
        hist, k=k, exclude=wider, exclude_history=exclude_history, fill=fill
    )
    assert many_items[0][many_items[0] >= 0].tolist() == ref_items


def _leading_source(
    neighbors: np.ndarray, scores: np.ndarray, history: np.ndarray, weights: np.ndarray, item: int
) -> int:
    """Position of the history item whose weighted similarity to ``item`` is largest."""
    best, leader = -np.inf, -1
    for position, (h, w) in enumerate(zip(history, weights, strict=True)):
        for j, sim in zip(neighbors[h], scores[h], strict=True):
            if j == item and w * np.float64(sim) > best:
                best, leader = w * np.float64(sim), position
    return leader


def test_recommend_never_seen(shop_model: ItemSimilarity) -> None:
    items_all, _ = shop_model.recommend_all(k=10)
    for user in range(0, 400, 37):
        seen, _ = shop_model.user_history(user)
        items, _ = shop_model.recommend(user, k=10)
        assert len(items) == 10
        assert not set(seen.tolist()) & set(items.tolist())
        assert items.tolist() == items_all[user].tolist()
    unknown, _ = shop_model.recommend(10_000, k=5)
    state = shop_model._state
    assert state is not None
    assert unknown.tolist() == state.prior(shop_model.trend_weight)[1][:5].tolist()
    # Without the trend term, an unknown user gets the most popular items.
    plain, _ = shop_model.score([], k=5, trend=False)
    assert plain.tolist() == state.popular_order()[:5].tolist()


def test_affinity_and_recommend_all_of_some_users() -> None:
    shop = synthetic_shop(300, 90, 3000, seed=8)
    model = ItemSimilarity(weighting=Weighting(half_life_days=2.0, cap=1.5)).fit(shop)
    users = [5, 299, 5, 10_000, 0, -1]  # repeated, unknown and negative users included
    every = model.affinity()
    some = model.affinity(users)
    assert some.n_users == len(users)
    for row, user in enumerate(users):
        got = slice(some.indptr[row], some.indptr[row + 1])
        if 0 <= user < every.n_users:
            want = slice(every.indptr[user], every.indptr[user + 1])
            assert some.indices[got].tolist() == every.indices[want].tolist()
            assert some.data[got].tolist() == every.data[want].tolist()
        else:
            assert got.stop == got.start
    assert np.all(some.data > 0)
    assert np.all(some.data <= 1.5)
    items, scores = model.recommend_all(users[:3], k=7)
    all_items, all_scores = model.recommend_all(k=7)
    assert items.tolist() == all_items[[5, 299, 5]].tolist()
    assert scores.tolist() == all_scores[[5, 299, 5]].tolist()


@pytest.mark.parametrize("mmap", [False, True])
def test_save_load(shop_model: ItemSimilarity, tmp_path: Path, mmap: bool) -> None:
    path = tmp_path / "model.npz"
    shop_model.save(path)
    loaded = ItemSimilarity.load(path, mmap=mmap)
    assert loaded.n_neighbors == shop_model.n_neighbors
    assert loaded.weighting == shop_model.weighting
    for item in (0, 17, 99):
        a, sa = shop_model.similar_items(item, k=12)
        b, sb = loaded.similar_items(item, k=12)
        assert a.tolist() == b.tolist()
        np.testing.assert_array_equal(sa, sb)
    assert loaded.recommend(3)[0].tolist() == shop_model.recommend(3)[0].tolist()
    with np.load(path, allow_pickle=False) as data:  # no pickled member anywhere
        assert "neighbors" in data.files


def test_only_incremental_models_keep_cooccurrences(
    shop_model: ItemSimilarity, tmp_path: Path
) -> None:
    """The stored pairs' co-occurrences serve partial_fit's incremental path alone: a model
    that refits on every update (BM25, the default) keeps none, saved or not."""
    state = shop_model._state
    assert state is not None
    assert state.cooc.shape == (120, 0)
    shop_model.save(tmp_path / "model.npz")
    loaded = ItemSimilarity.load(tmp_path / "model.npz", mmap=True)
    assert loaded._state is not None
    assert loaded._state.cooc.shape == (120, 0)
    shop = synthetic_shop(400, 120, 4000, n_categories=10, seed=3)
    cosine = ItemSimilarity(measure="cosine", n_neighbors=8, margin=2).fit(shop)
    assert cosine._state is not None
    assert cosine._state.cooc.shape == (120, 10)
    assert np.all(cosine._state.cooc[cosine._state.neighbors >= 0] > 0)
    # A model switched to an incremental measure after its fit has nothing to update from:
    # its next partial_fit refits.
    switched = ItemSimilarity.load(tmp_path / "model.npz")
    switched.measure = "cosine"
    more = synthetic_shop(400, 120, 600, n_categories=10, seed=4)
    switched.partial_fit(more)
    assert switched._state is not None
    assert switched._state.stats == {}  # no incremental update ran
    assert switched._state.cooc.shape == switched._state.neighbors.shape


def _split_fit(
    m: UserItemMatrix, cut: float, **kwargs: object
) -> tuple[ItemSimilarity, ItemSimilarity]:
    rows = np.repeat(np.arange(m.n_users), np.diff(m.indptr))
    rng = np.random.default_rng(0)
    first = rng.random(m.nnz) < cut
    a = UserItemMatrix.from_coo(rows[first], m.indices[first], m.data[first])
    b = UserItemMatrix.from_coo(rows[~first], m.indices[~first], m.data[~first])
    inc = ItemSimilarity(**kwargs).fit(a).partial_fit(b)  # type: ignore[arg-type]
    full = ItemSimilarity(**kwargs).fit(m)  # type: ignore[arg-type]
    return inc, full


def _same_served(a: ItemSimilarity, b: ItemSimilarity) -> None:
    assert a.n_items == b.n_items
    for item in range(a.n_items):
        ia, sa = a.neighbors(item)
        ib, sb = b.neighbors(item)
        assert ia.tolist() == ib.tolist(), item
        np.testing.assert_array_equal(sa, sb)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.floats(0.3, 0.98),
    measure=st.sampled_from(["cosine", "jaccard", "lift", "conditional", "cooccurrence"]),
    margin=st.integers(0, 4),
    binary=st.booleans(),
    shrinkage=st.sampled_from([0.0, 2.0]),
    min_support=st.sampled_from([0.0, 2.0]),
)
def test_partial_fit_equals_full_fit(
    seed: int,
    cut: float,
    measure: str,
    margin: int,
    binary: bool,
    shrinkage: float,
    min_support: float,
) -> None:
    rng = np.random.default_rng(seed)
    m = random_matrix(rng, 40, 25, 0.2, max_value=1 if binary else 3)
    inc, full = _split_fit(
        m, cut, measure=measure, n_neighbors=4, margin=margin, binary=binary,
        shrinkage=shrinkage, min_support=min_support, alpha=0.5,
    )  # fmt: skip
    _same_served(inc, full)


def test_partial_fit_grows_and_falls_back() -> None:
    rng = np.random.default_rng(7)
    m = random_matrix(rng, 50, 30, 0.15)
    for kwargs in ({"measure": "cosine"}, {"measure": "bm25"}, {"binary": False}):
        inc, full = _split_fit(m, 0.5, n_neighbors=5, **kwargs)  # bm25: a full refit
        _same_served(inc, full)
    # A refund can lower a weight: the update falls back to a full refit, still equal.
    shop = synthetic_shop(60, 20, 600, n_categories=4, seed=1)
    types = np.where(np.arange(600) % 7 == 0, 10, 6).astype(np.int8)
    events = _Events(shop.users, shop.items, types, shop.timestamps, 60, 20)
    inc = ItemSimilarity(measure="cosine", n_neighbors=4, binary=False)
    inc.fit(events.slice(0, 400)).partial_fit(events.slice(400, 600))
    full = ItemSimilarity(measure="cosine", n_neighbors=4, binary=False).fit(events)
    _same_served(inc, full)


class _Events:
    """A minimal interactions object, like the store's."""

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        types: np.ndarray,
        timestamps: np.ndarray,
        n_users: int,
        n_items: int,
    ) -> None:
        self.users = users
        self.items = items
        self.types = types
        self.timestamps = timestamps
        self.values = np.ones(len(users), dtype=np.float32)
        self.n_users = n_users
        self.n_items = n_items

    def slice(self, lo: int, hi: int) -> _Events:
        return _Events(
            self.users[lo:hi], self.items[lo:hi], self.types[lo:hi], self.timestamps[lo:hi],
            self.n_users, self.n_items,
        )  # fmt: skip


def test_time_decay_shapes_affinity_only() -> None:
    shop = synthetic_shop(100, 30, 1500, n_categories=5, seed=2)
    plain = ItemSimilarity(measure="cosine", n_neighbors=5, weighting=Weighting()).fit(shop)
    decayed = ItemSimilarity(
        measure="cosine", n_neighbors=5, weighting=Weighting(half_life_days=30)
    ).fit(shop)
    _same_served(plain, decayed)  # similarity is binary: decay does not change it
    _, w_plain = plain.user_history(0)
    _, w_decayed = decayed.user_history(0)
    assert np.all(w_decayed <= w_plain + 1e-6)
    # partial_fit moves the reference time to the newest event: the affinities of one fit.
    inc = ItemSimilarity(measure="cosine", n_neighbors=5, weighting=Weighting(half_life_days=30))
    inc.fit(_Events(shop.users[:1000], shop.items[:1000], shop.types[:1000],
                    shop.timestamps[:1000], 100, 30))  # fmt: skip
    inc.partial_fit(_Events(shop.users[1000:], shop.items[1000:], shop.types[1000:],
                            shop.timestamps[1000:], 100, 30))  # fmt: skip
    ref = decayed
    _same_affinities_and_trend(inc, ref)


def test_partial_fit_keeps_a_fixed_reference_time() -> None:
    shop = synthetic_shop(100, 30, 1500, n_categories=5, seed=2)
    fixed = Weighting(half_life_days=30, reference_time=float(shop.timestamps[999]))
    inc = ItemSimilarity(measure="cosine", n_neighbors=5, weighting=fixed)
    inc.fit(_Events(shop.users[:1000], shop.items[:1000], shop.types[:1000],
                    shop.timestamps[:1000], 100, 30))  # fmt: skip
    inc.partial_fit(_Events(shop.users[1000:], shop.items[1000:], shop.types[1000:],
                            shop.timestamps[1000:], 100, 30))  # fmt: skip
    ref = ItemSimilarity(measure="cosine", n_neighbors=5, weighting=fixed).fit(shop)
    _same_affinities_and_trend(inc, ref)


def test_partial_fit_long_after_the_fit_stays_finite() -> None:
    # A year of 3-day half-lives is 2**122: measured from the first fit's reference time,
    # the new events' weights would overflow float32 (and the trend's float64 soon after).
    shop = synthetic_shop(100, 30, 1500, n_categories=5, seed=2)
    later = shop.timestamps.copy()
    later[1000:] += 2 * 365 * 86400.0
    first = _Events(shop.users[:1000], shop.items[:1000], shop.types[:1000], later[:1000], 100, 30)
    new = _Events(shop.users[1000:], shop.items[1000:], shop.types[1000:], later[1000:], 100, 30)
    model = ItemSimilarity(measure="cosine", n_neighbors=5, trend_half_life_days=3.0)
    model.fit(first).partial_fit(new)
    ref = ItemSimilarity(measure="cosine", n_neighbors=5, trend_half_life_days=3.0).fit(
        _Events(shop.users, shop.items, shop.types, later, 100, 30)
    )
    assert model._state is not None
    assert model._state.decayed is not None
    assert np.all(np.isfinite(model._state.decayed))
    assert np.all(np.isfinite(model._state.trend))
    _same_affinities_and_trend(model, ref)
    users = np.arange(100)
    got = model.score_many(model.affinity(users), k=5)
    want = ref.score_many(ref.affinity(users), k=5)
    assert np.all(np.isfinite(got[1]))
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)


def _same_affinities_and_trend(inc: ItemSimilarity, ref: ItemSimilarity) -> None:
    for user in range(0, 100, 9):
        a = inc.user_history(user)
        b = ref.user_history(user)
        assert a[0].tolist() == b[0].tolist()
        np.testing.assert_allclose(a[1], b[1], rtol=1e-5)
    _same_served(inc, ref)
    assert inc._state is not None
    assert ref._state is not None
    np.testing.assert_allclose(inc._state.trend, ref._state.trend, rtol=1e-9)


def test_default_type_weights_cover_every_type() -> None:
    from recsdk.events import TypeCode

    assert set(DEFAULT_TYPE_WEIGHTS) == {int(t) for t in TypeCode}


def test_trend_term_lifts_what_sells_now() -> None:
    day = 86400.0
    # Item 2 was bought by many long ago, item 3 by a few this week; user 0 saw item 0.
    users = np.array([1, 2, 3, 4, 5, 6, 7, 8, 0])
    items = np.array([2, 2, 2, 2, 2, 3, 3, 1, 0])
    stamps = np.array([0, 0, 0, 0, 0, 99, 99, 99, 99]) * day
    events = _Events(users, items, np.full(9, 2, np.int8), stamps, 9, 4)
    popular = ItemSimilarity(n_neighbors=2, trend_half_life_days=None).fit(events)
    recent = ItemSimilarity(n_neighbors=2, trend_half_life_days=7).fit(events)
    assert popular.recommend(0, k=1)[0].tolist() == [2]
    assert recent.recommend(0, k=1)[0].tolist() == [3]
    assert recent.similar_items(0, k=3)[0].tolist() == popular.similar_items(0, k=3)[0].tolist()


def test_scoring_from_many_threads_matches_one_thread(shop_model: ItemSimilarity) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(11)
    histories = [rng.choice(120, size=rng.integers(0, 12), replace=False) for _ in range(200)]

    def top(history: np.ndarray) -> tuple[list[int], list[float], list[int]]:
        found = shop_model.explain(history, k=7, exclude=[0, 1])
        return found.items.tolist(), found.scores.tolist(), found.sources.tolist()

    alone = [top(h) for h in histories]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(top, histories * 3))
    assert together == alone * 3  # per-thread scratch arrays, always left clean


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_neighbors", 2.5),
        ("n_neighbors", "5"),
        ("n_neighbors", 0),
        ("margin", -1),
        ("margin", True),
        ("shrinkage", -1.0),
        ("min_support", float("nan")),
        ("bm25_b", 2.0),
        ("trend_weight", -0.5),
        ("trend_half_life_days", 0.0),
        ("weighting", 3),
    ],
)
def test_bad_parameters_name_themselves(field: str, value: object) -> None:
    from recsdk.errors import ValidationError

    with pytest.raises(ValidationError, match=f"^{field}: "):
        ItemSimilarity(**{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [-1, 2.5, "3", None])
def test_bad_k_names_itself(k: object) -> None:
    from recsdk.errors import ValidationError

    model = ItemSimilarity(measure="cosine", n_neighbors=3).fit(synthetic_shop(50, 20, 400))
    with pytest.raises(ValidationError, match=r"^k: "):
        model.similar_items(0, k=k)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^k: "):
        model.score([0, 1], k=k)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^k: "):
        model.recommend_all([0, 1], k=k)  # type: ignore[arg-type]
    assert len(model.similar_items(0, k=0)[0]) == 0
