"""Ranking metrics and the evaluation loop over anything with ``recommend(user, k)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from recsdk.errors import checked_int
from recsdk.evaluation.splits import Split

__all__ = ["METRICS", "Recommends", "evaluate", "rank_metrics"]

#: The metrics :func:`evaluate` reports (each averaged over test users, but coverage).
METRICS = ("hr", "ndcg", "precision", "recall", "map", "mrr", "coverage")


class Recommends(Protocol):
    """What :func:`evaluate` needs: ranked item indices for a user.

    ``recommend`` may return a sequence of items or a tuple ``(items, scores)``.
    """

    def recommend(self, user: int, k: int) -> Any: ...


def rank_metrics(
    ranked: Sequence[int] | npt.NDArray[Any], targets: set[int], k: int
) -> dict[str, float]:
    """HR, NDCG, precision, recall, average precision and reciprocal rank at ``k``.

    Relevance is binary (an item is a target or not); ideal DCG counts
    ``min(k, len(targets))`` hits. An item ranked twice is a hit at its first place only:
    the repeat fills a place the shopper sees for nothing.
    """
    k = checked_int("k", k, minimum=1)
    top = [int(i) for i in list(ranked)[:k]]
    first = {item: place for place, item in reversed(list(enumerate(top)))}
    hits = np.array(
        [item in targets and first[item] == place for place, item in enumerate(top)],
        dtype=bool,
    )
    n_hits = int(hits.sum())
    ranks = np.flatnonzero(hits) + 1
    dcg = float(np.sum(1.0 / np.log2(ranks + 1)))
    ideal = min(k, len(targets))
    idcg = float(np.sum(1.0 / np.log2(np.arange(2, ideal + 2)))) if ideal else 1.0
    precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1) if len(hits) else hits
    ap = float(np.sum(precision_at[hits]) / ideal) if ideal else 0.0
    return {
        "hr": float(n_hits > 0),
        "ndcg": dcg / idcg,
        "precision": n_hits / k,
        "recall": n_hits / len(targets) if targets else 0.0,
        "map": ap,
        "mrr": float(1.0 / ranks[0]) if n_hits else 0.0,
    }


def evaluate(model: Recommends, split: Split, k: int = 10) -> dict[str, float]:
    """Average :func:`rank_metrics` over the split's test users, plus catalog coverage.

    Parameters
    ----------
    model:
        Anything with ``recommend(user, k)``.
    split:
        From :func:`~recsdk.evaluation.leave_last_out` or
        :func:`~recsdk.evaluation.temporal_split`.
    k:
        Cut-off.

    Returns
    -------
    dict
        ``hr``, ``ndcg``, ``precision``, ``recall``, ``map``, ``mrr`` (means over users),
        ``coverage`` (share of the catalog recommended to someone) and ``users``.
    """
    k = checked_int("k", k, minimum=1)
    totals = dict.fromkeys(METRICS[:-1], 0.0)
    shown: set[int] = set()
    for position, user in enumerate(split.users.tolist()):
        ranked = _items(model.recommend(user, k))
        shown.update(int(i) for i in ranked[:k])
        for name, value in rank_metrics(
            ranked, set(split.targets_of(position).tolist()), k
        ).items():
            totals[name] += value
    n = max(len(split), 1)
    out = {name: value / n for name, value in totals.items()}
    out["coverage"] = len(shown) / max(split.train.n_items, 1)
    out["users"] = float(len(split))
    return out


def _items(result: Any) -> list[int]:
    if isinstance(result, tuple) and len(result) == 2:
        result = result[0]
    return [int(i) for i in np.asarray(result).ravel() if int(i) >= 0]
