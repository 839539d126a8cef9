"""Interactions -> weighted user x item matrix: type weights, decay, cap, damping, bots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from engine_reference import dense

from recsdk.engine import Weighting, bot_users, build_matrix
from recsdk.engine.matrix import item_trend, trend_prior
from recsdk.events import TypeCode


class Events:
    def __init__(
        self,
        users: Any,
        items: Any,
        types: Any = None,
        values: Any = None,
        timestamps: Any = None,
        n: tuple[int, int] = (3, 4),
    ) -> None:
        self.users = np.asarray(users, dtype=np.int32)
        self.items = np.asarray(items, dtype=np.int32)
        if types is not None:
            self.types = np.asarray(types, dtype=np.int8)
        if values is not None:
            self.values = np.asarray(values, dtype=np.float32)
        if timestamps is not None:
            self.timestamps = np.asarray(timestamps, dtype=np.float64)
        self.n_users, self.n_items = n


def test_type_weights_and_ratings() -> None:
    t = TypeCode
    ev = Events(
        [0, 0, 0, 1, 1, 2, 2],
        [0, 0, 1, 2, 3, 0, 1],
        [t.view, t.purchase, t.page, t.rate, t.add_to_cart, t.wishlist, t.click],
        [1, 3, 1, 4, 2, 1, 1],
    )
    x = dense(build_matrix(ev))
    assert x.tolist() == [[6, 0, 0, 0], [0, 0, 4, 3], [2, 2, 0, 0]]
    custom = Weighting(type_weights={int(t.view): 1.0, int(t.purchase): 10.0})
    assert dense(build_matrix(ev, custom))[0].tolist() == [11, 0, 0, 0]


def test_negative_sums_are_dropped_and_binary() -> None:
    t = TypeCode
    ev = Events([0, 0, 0, 1], [0, 0, 1, 1], [t.purchase, t.refund, t.view, t.view])
    m = build_matrix(ev)
    assert dense(m).tolist() == [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert m.nnz == 2
    assert np.all(build_matrix(ev, binary=True).data == 1)


def test_decay_cap_and_damping() -> None:
    day = 86400.0
    ev = Events([0, 0, 1, 1, 1], [0, 1, 0, 1, 2], [2] * 5, None, [0, 10 * day] + [10 * day] * 3)
    decayed = dense(build_matrix(ev, Weighting(half_life_days=10)))
    assert decayed[0].tolist() == [0.5, 1, 0, 0]
    old = dense(build_matrix(ev, Weighting(half_life_days=10, reference_time=20 * day)))
    assert old[0].tolist() == [0.25, 0.5, 0, 0]
    many = Events([0] * 5, [1] * 5, [4] * 5)
    assert dense(build_matrix(many, Weighting(cap=7)))[0, 1] == 7
    damped = dense(build_matrix(ev, Weighting(user_damping=0.5)))
    np.testing.assert_allclose(damped[1, :3], [1 / np.sqrt(3)] * 3, rtol=1e-6)


def test_bots_are_left_out() -> None:
    users = [0] * 50 + [1, 1, 2]
    items = [*list(range(50)), 0, 1, 0]
    stamps = [1000.0 + i for i in range(50)] + [0.0, 5000.0, 0.0]
    bots = bot_users(users, stamps, 3, max_events_per_minute=20)
    assert bots.tolist() == [True, False, False]
    assert bot_users(users, stamps, 3, max_events_percentile=50).tolist() == [True, False, False]
    ev = Events(users, items, [2] * 53, None, stamps, n=(3, 50))
    m = build_matrix(ev, Weighting(max_events_per_minute=20))
    assert m.row_lengths().tolist() == [0, 2, 1]


def test_weighting_validation_and_round_trip() -> None:
    with pytest.raises(ValueError, match="half_life"):
        Weighting(half_life_days=0)
    w = Weighting(half_life_days=3, cap=5, type_weights={2: 1.5})
    assert Weighting.from_dict(w.to_dict()) == w


def test_index_checks() -> None:
    from recsdk.engine import UserItemMatrix

    with pytest.raises(ValueError, match="n_items"):
        UserItemMatrix.from_coo([0], [5], n_users=1, n_items=3)
    with pytest.raises(ValueError, match="negative"):
        UserItemMatrix.from_coo([0], [-1])


def test_item_trend_decays_and_ignores_refunds_and_bots() -> None:
    day = 86400.0
    t = TypeCode
    ev = Events(
        [0, 0, 1, 1, 2],
        [0, 1, 1, 2, 3],
        [t.view, t.purchase, t.view, t.refund, t.view],
        None,
        [10 * day, 10 * day, 0, 10 * day, 10 * day],
    )
    trend = item_trend(ev, Weighting(), half_life_days=10, reference_time=None)
    assert trend.tolist() == [1.0, 5.0 + 0.5, 0.0, 1.0]  # the refund counts nothing
    flat = item_trend(ev, Weighting(), half_life_days=None, reference_time=None)
    assert flat.tolist() == [1.0, 6.0, 0.0, 1.0]
    bots = Weighting(max_events_percentile=10)  # users 0 and 1 have more events than most
    assert item_trend(ev, bots, None, None).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_trend_prior_is_scaled_and_ordered() -> None:
    prior, order = trend_prior(np.array([1.0, 4.0, 0.0, 4.0, 2.0]), 0.5)
    assert prior.tolist() == [0.125, 0.5, 0.0, 0.5, 0.25]
    assert order.tolist() == [1, 3, 4, 0]  # ties by index; items without trend left out
    off, none = trend_prior(np.array([1.0, 2.0]), 0.0)
    assert off.tolist() == [0.0, 0.0]
    assert len(none) == 0
