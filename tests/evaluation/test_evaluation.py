"""Splits and metrics of recsdk.evaluation, on tiny hand-made logs."""

from __future__ import annotations

import numpy as np
import pytest

from recsdk.evaluation import (
    EventArrays,
    Popularity,
    evaluate,
    leave_last_out,
    rank_metrics,
    temporal_split,
)


def _events(users: list[int], items: list[int], stamps: list[float]) -> EventArrays:
    n = len(users)
    return EventArrays(
        users=np.asarray(users, dtype=np.int32),
        items=np.asarray(items, dtype=np.int32),
        types=np.full(n, 6, dtype=np.int8),
        timestamps=np.asarray(stamps, dtype=np.float64),
        values=np.ones(n, dtype=np.float32),
        n_users=max(users) + 1,
        n_items=max(items) + 1,
    )


def test_rank_metrics_by_hand() -> None:
    m = rank_metrics([5, 1, 7, 2], {1, 2, 9}, k=4)
    assert m["hr"] == 1.0
    assert m["precision"] == 0.5
    assert m["recall"] == pytest.approx(2 / 3)
    dcg = 1 / np.log2(3) + 1 / np.log2(5)
    idcg = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg"] == pytest.approx(dcg / idcg)
    assert m["map"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert m["mrr"] == 0.5
    miss = rank_metrics([3], {4}, k=1)
    assert miss == {"hr": 0, "ndcg": 0, "precision": 0, "recall": 0, "map": 0, "mrr": 0}


def test_a_repeated_item_is_one_hit() -> None:
    repeated = rank_metrics([1, 1, 1], {1}, k=3)
    assert repeated == rank_metrics([1, 8, 9], {1}, k=3)
    assert repeated["recall"] == 1.0
    assert repeated["ndcg"] == 1.0


def test_k_must_be_positive() -> None:
    from recsdk.errors import ValidationError

    with pytest.raises(ValidationError, match=r"^k: "):
        rank_metrics([1], {1}, 0)
    log = _events([0, 0, 1, 1], [0, 1, 1, 2], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValidationError, match=r"^k: "):
        evaluate(Popularity().fit(log), leave_last_out(log), k=0)
    with pytest.raises(ValidationError, match=r"^k: "):
        Popularity().fit(log).recommend(0, k=-1)


def test_leave_last_out() -> None:
    ev = _events([0, 0, 0, 1, 1, 2], [1, 2, 3, 4, 5, 6], [3, 1, 2, 5, 5, 1])
    split = leave_last_out(ev)
    assert split.users.tolist() == [0, 1]
    assert split.targets_of(0).tolist() == [1]
    assert split.targets_of(1).tolist() == [5]  # equal times: the later line
    assert len(split.train) == 4


def test_temporal_split_discovery() -> None:
    ev = _events([0, 0, 0, 1, 2, 2], [1, 2, 1, 3, 4, 5], [1, 2, 5, 6, 1, 7])
    split = temporal_split(ev, 4.0, new_items_only=True)
    # user 0 re-buys item 1 (not new), user 1 has no history, user 2 finds item 5.
    assert split.users.tolist() == [2]
    assert split.targets_of(0).tolist() == [5]
    assert temporal_split(ev, 4.0).users.tolist() == [0, 2]


def test_evaluate_popularity() -> None:
    ev = _events([0, 1, 2, 3, 0, 1, 3], [0, 0, 0, 1, 1, 2, 2], [1, 1, 1, 1, 2, 2, 2])
    split = leave_last_out(ev)
    model = Popularity().fit(split.train)
    assert model.recommend(3, 2).tolist() == [0, 2]  # item 1 is in its training history
    result = evaluate(model, split, k=1)
    assert result["users"] == 3
    assert 0 <= result["ndcg"] <= 1
    assert result["coverage"] == pytest.approx(2 / 3)
