"""Reading a shopper's history: the plain-Python path for short histories equals numpy's."""

from __future__ import annotations

import random

import numpy as np
import pytest

from recsdk import Recommender
from recsdk.events import TypeCode
from recsdk.recommender import profile
from recsdk.recommender.batch import _preferences
from recsdk.store.results import ItemEventRow

TYPES = [TypeCode.view, TypeCode.click, TypeCode.add_to_cart, TypeCode.purchase,
         TypeCode.rate, TypeCode.refund, TypeCode.wishlist]  # fmt: skip


def random_rows(rng: random.Random, n_items: int) -> list[ItemEventRow]:
    rows: list[ItemEventRow] = []
    for _ in range(rng.randrange(1, 60)):
        code = int(rng.choice(TYPES))
        value = float(rng.randrange(1, 6)) if code == TypeCode.rate else None
        ts = 1_750_000_000_000 + rng.randrange(0, 90 * 86_400_000)
        rows.append((rng.randrange(1, n_items), code, ts, value, None, None, None))
    rows.sort(key=lambda row: -row[2])
    return rows


def test_short_histories_read_alike_in_python_and_numpy(
    rec: Recommender, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = rec._serving()
    rng = random.Random(3)
    for _ in range(300):
        rows = random_rows(rng, len(state.items))
        fast = profile.read_history(rows, state.weights, state.items)
        monkeypatch.setattr(profile, "_SMALL", 0)
        slow = profile.read_history(rows, state.weights, state.items)
        monkeypatch.setattr(profile, "_SMALL", 64)
        for name in ("items", "seen", "bought", "actions"):
            assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        np.testing.assert_allclose(fast.weights, slow.weights, rtol=1e-12)
        assert list(fast.preferred) == list(slow.preferred)
        np.testing.assert_allclose(list(fast.preferred.values()), list(slow.preferred.values()))


def test_batch_preferences_are_the_single_lists_ones(rec: Recommender) -> None:
    state = rec._serving()
    assert state.similarity is not None
    histories = state.similarity.affinity()
    found = _preferences(state, histories)
    for row in range(histories.n_users):
        items, weights = histories.row(row)
        order = np.argsort(-weights, kind="stable")
        expected = profile._small_preferences(
            items[order].tolist(), weights[order].astype(np.float64).tolist(), state.items
        )
        assert found.of_row(row) == list(expected), row
        np.testing.assert_allclose(
            found.shares[row][: len(expected)], list(expected.values()), rtol=1e-6
        )
